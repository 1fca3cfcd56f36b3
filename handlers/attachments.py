"""Files attached to a message: told apart (CSV or not), completed when Slack sent a stub, fetched.

Events carry the files of a message in `files`. In some workspaces (Slack Connect, some
Enterprise Grid setups) an entry is only a stub, `{"id": ..., "file_access": "check_file_info"}`,
and `files.info` gives the rest; `complete` does that. Fetching goes through `handlers.downloads`
(the bot token, the size cap, Slack's sign-in page recognised), then the bytes are checked to be
what they should be: an image Gemini can read, a document (a PDF, a text file), or CSV text.

The token goes only to Slack's file host, which is derived from the client's own API URL
(`downloads.files_origin`), so a bot pointed at a gateway by SLACK_API_URL fetches from the gateway,
and nothing a file object says can send the token anywhere else. Whether a file is external is
checked on the completed object, since a stub does not say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient

from core.errors import InvalidInput
from core.gemini.documents import SUPPORTED, document_type, prepare_document
from core.gemini.failures import NotAnImage
from core.gemini.images import MAX_PIXELS, ImageInput, prepare_image
from handlers import downloads

CSV_TYPES = frozenset(
    {"text/csv", "application/csv", "text/comma-separated-values", "application/vnd.ms-excel"}
)
# A CSV of 10,000 rows of a few paragraphs each stays well under this.
MAX_CSV_BYTES = 20_000_000


def files_of(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The files of a message event, those Slack has hidden or deleted left out."""
    found = event.get("files") or []
    return [
        dict(f)
        for f in found
        if isinstance(f, Mapping) and f.get("id") and f.get("mode") not in ("tombstone", "hidden_by_limit")
    ]


def is_csv(file: Mapping[str, Any]) -> bool:
    """Whether Slack (or the file's name) says it is a CSV file; the content is checked when read."""
    name = downloads.file_name(file).lower()
    return (
        str(file.get("filetype") or "").lower() == "csv"
        or str(file.get("mimetype") or "").split(";")[0].strip().lower() in CSV_TYPES
        or name.endswith(".csv")
    )


def complete(client: WebClient, file: Mapping[str, Any]) -> dict[str, Any]:
    """The full file object: `file` itself, or what `files.info` says when Slack sent a stub."""
    if file.get("url_private_download") or file.get("url_private"):
        return dict(file)
    if not file.get("id"):
        return dict(file)
    response = client.files_info(file=str(file["id"]))
    return dict(response.get("file") or file)


def files_origin(client: WebClient) -> str:
    """The origin `client`'s workspace serves files from (`https://files.slack.com` for Slack's API)."""
    return downloads.files_origin(str(client.base_url))


def fetch_image(
    client: WebClient, file: Mapping[str, Any], *, token: str, max_bytes: int, max_pixels: int = MAX_PIXELS
) -> ImageInput:
    """The image in `file`, as Gemini reads it (GIF, BMP... converted to PNG).

    Raises InvalidInput for a file that is external, not on Slack's file host, too large or
    cannot be fetched (Slack's sign-in page included), NotAnImage for bytes that are not an image,
    ImageTooLarge for one of more than `max_pixels` pixels (read from its header).
    """
    full = complete(client, file)
    data = downloads.download(full, token=token, max_bytes=max_bytes, allowed_origin=files_origin(client))
    return prepare_image(data, filename=downloads.file_name(full), max_pixels=max_pixels)


def is_document(file: Mapping[str, Any]) -> bool:
    """Whether the file's name or claimed type says it is a PDF or a text file (.txt, .md, .csv)."""
    return _document_type(file) is not None


def _document_type(file: Mapping[str, Any]) -> str | None:
    claimed = str(file.get("mimetype") or "")
    if not claimed and str(file.get("filetype") or "").lower() == "pdf":
        claimed = "application/pdf"
    return document_type(filename=downloads.file_name(file), mime_type=claimed)


def fetch_media(
    client: WebClient, file: Mapping[str, Any], *, token: str, max_bytes: int, max_pixels: int = MAX_PIXELS
) -> ImageInput:
    """What Gemini reads of `file`: a document (PDF or text) when its name or type says it is
    one, else an image (`fetch_image`); the bytes are checked either way, on the same fetch path.

    Raises as `fetch_image` does, NotADocument for a file whose bytes are not the document it
    claims, and NotAnImage (naming the documents read too) for a file that is neither.
    """
    full = complete(client, file)
    sent_as = _document_type(full)
    if sent_as is None:
        try:
            return fetch_image(client, full, token=token, max_bytes=max_bytes, max_pixels=max_pixels)
        except NotAnImage as exc:
            raise NotAnImage(f"{exc}; I also read {SUPPORTED}") from None
    data = downloads.download(full, token=token, max_bytes=max_bytes, allowed_origin=files_origin(client))
    return prepare_document(data, mime_type=sent_as, filename=downloads.file_name(full))


def fetch_text(
    client: WebClient, file: Mapping[str, Any], *, token: str, max_bytes: int = MAX_CSV_BYTES
) -> str:
    """The text of `file`: UTF-8 (with or without a BOM), else Windows-1252 as Excel writes it.

    Raises InvalidInput for a file that is external, not on Slack's file host, too large, cannot
    be fetched, or is not text.
    """
    full = complete(client, file)
    name = downloads.file_name(full)
    data = downloads.download(full, token=token, max_bytes=max_bytes, allowed_origin=files_origin(client))
    if b"\x00" in data[:8192]:
        raise InvalidInput(f"{name} is not a text file (is it a spreadsheet? save it as CSV)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise InvalidInput(f'{name} is not UTF-8 text; save it as "CSV UTF-8" and send it again') from None
