"""Images for Gemini: what the bytes really are, and PNG for the formats Gemini does not read.

Gemini takes PNG, JPEG, WEBP, HEIC and HEIF. The format is read from the bytes, never from a file
name or a MIME type someone claimed (Slack reports what the uploader's browser guessed). HEIC and
HEIF are recognised by their ISO-BMFF `ftyp` brands, because Pillow cannot open them without a
plugin; everything else Pillow can read is converted to PNG, and anything else is refused.

An image's pixel count is checked from its header, before anything is decoded: a GIF of a few KB
can declare 12,000 × 12,000 pixels, which decoding would hold in hundreds of MB. Nothing here
touches process-wide state (no `warnings` filters, no `Image.MAX_IMAGE_PIXELS`), so images are
prepared on many threads at once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property

from PIL import Image, ImageOps, UnidentifiedImageError

from core.gemini.failures import ImageTooLarge, NotAnImage

#: Pillow format → the MIME type Gemini accepts as it is.
AS_IS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp"}
#: The largest file the Files API takes.
MAX_FILE_BYTES = 2 * 1024**3
#: The most pixels an image may have unless the caller says otherwise (GEMBOT_MAX_IMAGE_PIXELS's default).
MAX_PIXELS = 50_000_000

_HEIC_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"})
_HEIF_BRANDS = frozenset({"mif1", "msf1"})
_AVIF_BRANDS = frozenset({"avif", "avis"})  # also list mif1, but Gemini does not take AVIF as is
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})


@dataclass(frozen=True, eq=False)
class ImageInput:
    """Image bytes in a format Gemini reads, with their MIME type."""

    mime_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _ftyp_brands(data: bytes) -> set[str]:
    """The major and compatible brands of an ISO-BMFF file (HEIC, HEIF, AVIF, MP4), else empty."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(data[0:4], "big")
    end = min(size if size >= 16 else 16, len(data), 4096)
    brands = {data[8:12].decode("latin-1")}
    brands.update(data[i : i + 4].decode("latin-1") for i in range(16, end - 3, 4))
    return brands


def _describe(filename: str | None) -> str:
    return f"{filename} is" if filename else "that file is"


def _check_pixels(image: Image.Image, max_pixels: int, filename: str | None) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{_describe(filename)} an image of {width:,} × {height:,} pixels; the limit is "
            f"{max_pixels:,} pixels"
        )


def _as_png(image: Image.Image, max_pixels: int, filename: str | None) -> bytes:
    image.seek(0)  # an animated GIF or a multi-page TIFF: its first frame
    _check_pixels(image, max_pixels, filename)  # a frame may be larger than the header said
    frame = ImageOps.exif_transpose(image)
    if frame.mode not in _PNG_MODES:
        has_alpha = "A" in frame.mode or "transparency" in frame.info
        frame = frame.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


def prepare_image(data: bytes, *, filename: str | None = None, max_pixels: int = MAX_PIXELS) -> ImageInput:
    """`data` as an image Gemini reads: PNG, JPEG, WEBP, HEIC and HEIF as they are, others as PNG.

    Raises NotAnImage for bytes that are not an image (`filename` only names it in the message)
    and ImageTooLarge for one too big to upload or with more than `max_pixels` pixels, the latter
    told from the header before any pixel is decoded (HEIC and HEIF, which are not decoded here,
    are not counted). Safe to call from several threads at once.
    """
    if not data:
        raise NotAnImage(f"{_describe(filename)} empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLarge(f"{_describe(filename)} larger than the 2 GB Gemini accepts")
    brands = _ftyp_brands(data)
    if brands & _HEIC_BRANDS:
        return ImageInput("image/heic", data)
    if brands & _HEIF_BRANDS and not brands & _AVIF_BRANDS:
        return ImageInput("image/heif", data)
    try:
        # `open` reads the header only; Pillow itself refuses (DecompressionBombError) an image
        # over twice its own MAX_IMAGE_PIXELS there, and `max_pixels` is checked right after.
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(image, max_pixels, filename)
            if image.format in AS_IS:
                # Cheap (no decoding), but catches a cut-off or corrupted PNG before it is paid for.
                image.verify()
                return ImageInput(AS_IS[image.format], data)
            return ImageInput("image/png", _as_png(image, max_pixels, filename))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning too: a caller's warning filters may have turned it into an error.
        raise ImageTooLarge(f"{_describe(filename)} an image with too many pixels to convert") from None
    except UnidentifiedImageError:
        raise NotAnImage(
            f"{_describe(filename)} not an image (Gemini takes PNG, JPEG, WEBP, HEIC, HEIF, and Gembot "
            "converts GIF, BMP, TIFF and most other image formats)"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        # Pillow knew the format but could not decode it: damaged, truncated or exotic.
        raise NotAnImage(f"{_describe(filename)} an image that could not be read (damaged?)") from None
