"""Images: formats read from the bytes, conversions to PNG, inline bytes on the wire, the Files API;
pixel counts checked from the header (decompression bombs), on many threads at once."""

from __future__ import annotations

import inspect
import io
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from core.gemini.failures import ImageTooLarge, NotAnImage, UploadFailed
from core.gemini.generation import Turn, generate
from core.gemini.images import MAX_PIXELS, prepare_image
from core.settings import Settings
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import decode_base64, gemini_client, heif_header, image_bytes
from tests.support.image_bombs import gif_bomb, measure_bomb

HTML = b"<!DOCTYPE html>\n<html><head><title>Slack</title></head><body>Sign in</body></html>\n"


def pixels(data: bytes) -> list[object]:
    with Image.open(io.BytesIO(data)) as image:
        return list(image.convert("RGB").get_flattened_data())


def inline_parts(standin: GeminiStandIn) -> list[dict[str, str]]:
    parts = standin.last("generate").json["contents"][-1]["parts"]
    return [p["inlineData"] for p in parts if "inlineData" in p]


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_formats_gemini_reads_go_inline_as_they_are(
    gemini_standin: GeminiStandIn, fmt: str, mime: str
) -> None:
    data = image_bytes(fmt)
    image = prepare_image(data, filename=f"photo.{fmt.lower()}")
    assert (image.mime_type, image.data) == (mime, data)

    answer = generate(gemini_client(gemini_standin), "What is this?", images=[image])

    assert answer.text.startswith(f"echo: What is this? [image {mime} {len(data)} bytes")
    [blob] = inline_parts(gemini_standin)
    assert blob["mime_type"] == mime
    assert decode_base64(blob["data"]) == data


@pytest.mark.parametrize(
    ("fmt", "mode"), [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("TIFF", "CMYK"), ("ICO", "RGBA")]
)
def test_other_formats_are_converted_to_png(gemini_standin: GeminiStandIn, fmt: str, mode: str) -> None:
    data = image_bytes(fmt, mode=mode, size=(16, 16))
    image = prepare_image(data)
    assert image.mime_type == "image/png"
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as original:
        assert pixels(image.data) == list(original.convert("RGB").get_flattened_data())

    generate(gemini_client(gemini_standin), "and this?", images=[image])

    [blob] = inline_parts(gemini_standin)
    assert blob["mime_type"] == "image/png"
    assert decode_base64(blob["data"]) == image.data


def test_an_animated_gif_sends_its_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    assert set(pixels(prepare_image(out.getvalue()).data)) == {(255, 0, 0)}


def test_the_name_and_claimed_type_are_not_trusted() -> None:
    png = image_bytes("PNG")
    assert prepare_image(png, filename="holiday.jpg").mime_type == "image/png"
    with pytest.raises(NotAnImage, match=r"photo\.png is not an image"):
        prepare_image(HTML, filename="photo.png")


@pytest.mark.parametrize(
    ("header", "mime"),
    [
        (heif_header("heic", "mif1", "heic"), "image/heic"),
        (heif_header("mif1", "heic"), "image/heic"),
        (heif_header("heix", "mif1"), "image/heic"),
        (heif_header("mif1", "mif1", "miaf"), "image/heif"),
        (heif_header("msf1", "iso8"), "image/heif"),
    ],
)
def test_heic_and_heif_are_recognised_by_their_brands(header: bytes, mime: str) -> None:
    image = prepare_image(header)
    assert (image.mime_type, image.data) == (mime, header)


def test_heic_goes_inline_as_it_is(gemini_standin: GeminiStandIn) -> None:
    header = heif_header("heic", "mif1", "heic")
    generate(gemini_client(gemini_standin), "what is it?", images=[prepare_image(header)])
    [blob] = inline_parts(gemini_standin)
    assert (blob["mime_type"], decode_base64(blob["data"])) == ("image/heic", header)


def test_avif_is_not_taken_for_heif_but_converted() -> None:
    data = image_bytes("AVIF", size=(8, 8))
    assert b"ftypavif" in data[:16]
    assert prepare_image(data).mime_type == "image/png"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (HTML, "that file is not an image"),
        (b"", "that file is empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "that file is not an image"),
        (heif_header("isom", "mp41"), "that file is not an image"),  # an MP4 video
        (image_bytes("PNG", size=(64, 64), noise=True)[:200], "could not be read"),  # cut short
    ],
)
def test_what_is_not_an_image_is_refused_before_any_request(
    gemini_standin: GeminiStandIn, data: bytes, words: str
) -> None:
    with pytest.raises(NotAnImage, match=words):
        generate(gemini_client(gemini_standin), "what is this?", images=[prepare_image(data)])
    assert gemini_standin.requests() == []


# --------------------------------------------------------------------------- pixels


def test_the_default_pixel_bound_is_the_settings_default() -> None:
    default = inspect.signature(prepare_image).parameters["max_pixels"].default
    assert default == MAX_PIXELS == Settings().max_image_pixels == 50_000_000


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB")])
def test_an_image_over_max_pixels_is_refused(fmt: str, mode: str) -> None:
    data = image_bytes(fmt, mode=mode, size=(40, 30))
    assert prepare_image(data, max_pixels=1200).data
    with pytest.raises(
        ImageTooLarge, match=r"^photo is an image of 40 × 30 pixels; the limit is 1,199 pixels$"
    ):
        prepare_image(data, filename="photo", max_pixels=1199)


def test_the_bombs_of_these_tests_are_real_images() -> None:
    bomb = gif_bomb(300, 200)  # every pixel in its LZW data, as in the big ones
    with Image.open(io.BytesIO(prepare_image(bomb).data)) as converted:
        assert converted.size == (300, 200)
        assert converted.convert("L").getextrema() == (0, 0)


@pytest.mark.parametrize(
    "side",
    [
        pytest.param(12_000, id="12000x12000"),
        pytest.param(8_000, id="8000x8000-under-pillows-own-limit"),  # the one Pillow would decode
    ],
)
def test_a_gif_bomb_is_refused_at_once_without_the_memory_it_would_take(side: int) -> None:
    measured = measure_bomb(side, side)
    assert measured["outcome"] == (
        f"bomb.gif is an image of {side:,} × {side:,} pixels; the limit is 50,000,000 pixels"
    )
    assert measured["bytes"] < 64_000  # 144 million pixels in about 55 KB
    assert measured["seconds"] < 1.0  # about 0.01 s: the header only
    # Decoded, 8,000 × 8,000 took 124 MB more (one byte a pixel, then its PNG): here, about 1 MB.
    assert measured["grew_kb"] < 30_000, measured


def test_pillows_own_bomb_limit_is_refused_the_same_way() -> None:
    # Over twice Pillow's MAX_IMAGE_PIXELS, `Image.open` itself refuses, whatever `max_pixels` says.
    assert 2 * (Image.MAX_IMAGE_PIXELS or 0) < 14_000 * 14_000
    with pytest.raises(ImageTooLarge, match=r"bomb\.gif is an image with too many pixels to convert"):
        prepare_image(gif_bomb(14_000, 14_000), filename="bomb.gif", max_pixels=10**9)


def test_images_are_prepared_on_many_threads_at_once_and_no_warning_filter_is_touched() -> None:
    gif = image_bytes("GIF", size=(32, 32))
    png = image_bytes("PNG", size=(32, 32))
    bomb = gif_bomb(8_000, 8_000)
    with Image.open(io.BytesIO(gif)) as original:
        expected_pixels = list(original.convert("RGB").get_flattened_data())
    filters = list(warnings.filters)
    changed: list[object] = []
    stop = threading.Event()

    def watch() -> None:
        # `warnings.catch_warnings` swaps the process's filter list while it runs: any thread sees it.
        while not stop.is_set():
            if warnings.filters != filters:
                changed.append(list(warnings.filters))

    def work(n: int) -> str:
        if n % 3 == 0:
            converted = prepare_image(gif)
            assert pixels(converted.data) == expected_pixels
            return converted.mime_type
        if n % 3 == 1:
            return prepare_image(png).mime_type
        with pytest.raises(ImageTooLarge):
            prepare_image(bomb)
        return "refused"

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(150)))
    finally:
        stop.set()
        watcher.join()
    assert results == ["image/png", "image/png", "refused"] * 50
    assert changed == [] and warnings.filters == filters


# --------------------------------------------------------------------------- the Files API


def test_an_image_over_the_inline_limit_is_uploaded_and_referenced_by_uri(
    gemini_standin: GeminiStandIn,
) -> None:
    gemini_standin.processing(gets=2)
    big = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))  # ~12 kB, ~16 kB in base64
    small = prepare_image(image_bytes("JPEG"))
    client = gemini_client(gemini_standin, inline_image_limit=8_000)

    answer = generate(client, "compare them", images=[big, small])

    assert f"[image image/png {big.size} bytes" in answer.text
    assert f"[image image/jpeg {small.size} bytes" in answer.text
    actions = [r.action for r in gemini_standin.requests()]
    assert actions == [
        "upload.start",
        "upload.chunk",
        "files.get",
        "files.get",
        "files.get",
        "generateContent",
    ]
    start, chunk = gemini_standin.requests("files")[:2]
    assert start.headers["x-goog-upload-header-content-type"] == "image/png"
    assert chunk.body == big.data
    [stored] = gemini_standin.files()
    assert (stored.state, stored.data, stored.mime_type) == ("ACTIVE", big.data, "image/png")
    parts = gemini_standin.last("generate").json["contents"][0]["parts"]
    assert parts[0] == {"fileData": {"file_uri": stored.uri, "mime_type": "image/png"}}
    # The small one still fits inline.
    assert decode_base64(parts[1]["inlineData"]["data"]) == small.data
    assert parts[2] == {"text": "compare them"}


def test_the_limit_counts_the_whole_request_in_base64(gemini_standin: GeminiStandIn) -> None:
    images = [prepare_image(image_bytes("PNG", size=(40, 40), noise=True)) for _ in range(3)]
    # Each fits alone and the raw bytes together would too, but not their base64 in one request.
    limit = sum(i.size for i in images) + 4096 + 200
    client = gemini_client(gemini_standin, inline_image_limit=limit)

    generate(client, "three pictures", images=images)

    assert len(gemini_standin.requests(action="upload.start")) == 1
    parts = gemini_standin.last("generate").json["contents"][0]["parts"]
    assert [next(iter(p)) for p in parts] == ["fileData", "inlineData", "inlineData", "text"]


def test_an_upload_is_reused_by_later_turns(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=0)
    big = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))
    client = gemini_client(gemini_standin, inline_image_limit=8_000)

    generate(client, "first", images=[big])
    generate(client, [Turn("user", "first", (big,)), Turn("model", "ok"), Turn("user", "again?")])

    assert len(gemini_standin.requests(action="upload.start")) == 1
    assert len(gemini_standin.requests("generate")) == 2


def test_failed_processing_is_a_clear_error(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=1)
    gemini_standin.fail_processing()
    big = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))
    with pytest.raises(UploadFailed, match=r"could not process the uploaded image .*File processing failed"):
        generate(gemini_client(gemini_standin, inline_image_limit=8_000), "x", images=[big])
    assert gemini_standin.requests("generate") == []


def test_processing_that_never_ends_is_bounded(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=1, seconds=30)
    big = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))
    client = gemini_client(gemini_standin, inline_image_limit=8_000, gemini_file_timeout=0.5)
    with pytest.raises(UploadFailed, match=r"still processing the uploaded image after 0.5 s"):
        generate(client, "x", images=[big])
    polls = gemini_standin.requests(action="files.get")
    assert 2 <= len(polls) <= 6
    assert polls[-1].timestamp - gemini_standin.requests()[0].timestamp < 1.0
    assert gemini_standin.requests("generate") == []
