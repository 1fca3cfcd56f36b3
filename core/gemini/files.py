"""Images and documents too big to send inline go through the Files API: upload, wait until ACTIVE,
refer by URI.

An upload is processed by Google before a prompt may use it, so we poll its state with a growing
interval, bounded by `gemini_file_timeout`. Uploads are remembered by content hash for as long as
Google keeps them (48 hours), so the turns of a conversation replayed later reuse them.
"""

from __future__ import annotations

import functools
import io
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta

from google.genai import types

from core.gemini.client import GeminiClient
from core.gemini.failures import UploadFailed
from core.gemini.images import ImageInput

_FIRST_POLL = 0.1
_LONGEST_POLL = 2.0
# Reuse an upload only while it has this long left before Google deletes it.
_REUSE_MARGIN = timedelta(hours=1)

# Per client (an upload belongs to the key's project): content hash → (URI, expiry).
_Uploads = dict[str, tuple[str, datetime | None]]
_uploaded: weakref.WeakKeyDictionary[GeminiClient, _Uploads] = weakref.WeakKeyDictionary()
_uploaded_lock = threading.Lock()


def _fresh(expires: datetime | None) -> bool:
    return expires is None or expires - datetime.now(UTC) > _REUSE_MARGIN


def _remembered(client: GeminiClient, image: ImageInput) -> str | None:
    with _uploaded_lock:
        uri, expires = _uploaded.get(client, {}).get(image.sha256, ("", None))
    return uri if uri and _fresh(expires) else None


def _remember(client: GeminiClient, image: ImageInput, uri: str, expires: datetime | None) -> None:
    with _uploaded_lock:
        known = _uploaded.setdefault(client, {})
        for digest in [d for d, (_, e) in known.items() if not _fresh(e)]:
            del known[digest]
        known[image.sha256] = (uri, expires)


def upload_image(client: GeminiClient, image: ImageInput) -> types.Part:
    """Upload `image` (or a document, `core.gemini.documents`), wait until Gemini has processed it,
    and return a part that refers to it.

    Raises UploadFailed when processing fails or does not finish within `gemini_file_timeout`.
    """
    uri = _remembered(client, image)
    if uri is not None:
        return types.Part.from_uri(file_uri=uri, mime_type=image.mime_type)
    what = "image" if image.mime_type.startswith("image/") else "file"
    # Not charged to the user's daily limit (`core.daily_limits`): the answer that uses the upload is.
    file = upload_file(client, image.data, mime_type=image.mime_type, what=f"uploaded {what}")
    if not file.uri:
        raise UploadFailed(
            f"Gemini could not process the uploaded {what} (it has no URI); try another {what}"
        )
    _remember(client, image, file.uri, file.expiration_time)
    return types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type or image.mime_type)


def upload_file(
    client: GeminiClient,
    data: bytes,
    *,
    mime_type: str,
    what: str,
    display_name: str | None = None,
    continuing: bool = False,
) -> types.File:
    """Upload `data`, wait (a growing interval, bounded by `gemini_file_timeout`) until Gemini has
    processed it, and return the ACTIVE file; UploadFailed, naming `what`, when it fails or takes
    too long. The calls are not charged (`metered=False`), or with `continuing` neither charged
    nor refused: they serve a request already paid for (a batch's input)."""
    sdk = client.sdk
    config = types.UploadFileConfig(mime_type=mime_type, display_name=display_name)
    # With `continuing`, `call` neither charges nor refuses, whatever `metered` says.
    file = client.call(
        lambda: sdk.files.upload(file=io.BytesIO(data), config=config), metered=False, continuing=continuing
    )
    deadline = time.monotonic() + client.settings.gemini_file_timeout
    interval = _FIRST_POLL
    while file.state == types.FileState.PROCESSING:
        left = deadline - time.monotonic()
        if left <= 0:
            raise UploadFailed(
                f"Gemini was still processing the {what} after "
                f"{client.settings.gemini_file_timeout:g} s; try again later, or raise "
                "GEMBOT_GEMINI_FILE_TIMEOUT"
            )
        time.sleep(min(interval, left))
        interval = min(interval * 2, _LONGEST_POLL)
        poll = functools.partial(sdk.files.get, name=file.name or "")
        file = client.call(poll, metered=False, continuing=continuing)
    if file.state != types.FileState.ACTIVE or not file.name:
        why = file.error.message if file.error is not None and file.error.message else "no reason given"
        hint = "try again" if continuing else f"try another {what.split()[-1]}"
        raise UploadFailed(f"Gemini could not process the {what} ({why}); {hint}")
    return file
