"""What arrives on the wire: the recorded request, and the reading every endpoint shares (the text of
a `Content`, list pages)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from tests.support.gemini.replies import Reply, bad_request, json_reply


@dataclass
class RecordedRequest:
    """One request as it arrived on the wire.

    `kind` is the fault/recording scope ("generate", "embed", "models", "files", "batch", or "other");
    `action` the precise call ("generateContent", "streamGenerateContent", "batchEmbedContents",
    "embedContent", "countTokens", "models.list", "models.get", "upload.start", "upload.chunk",
    "files.get", "files.list", "files.delete", "files.download", "batches.create", "batches.get",
    "batches.cancel", "batches.delete", "batches.list"). `timestamp` is `time.monotonic()` at arrival;
    `status` is the HTTP status answered (0 while the request is still being served).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    timestamp: float
    kind: str = "other"
    action: str = ""
    api_version: str | None = None
    model: str | None = None
    status: int = 0

    @property
    def api_key(self) -> str | None:
        """The key the request carried, from the `x-goog-api-key` header or a `key` query."""
        if "x-goog-api-key" in self.headers:
            return self.headers["x-goog-api-key"]
        return self.query.get("key", [None])[0]

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body when it is an object, else an empty one."""
        return self.json if isinstance(self.json, dict) else {}


def text_of(content: dict[str, Any]) -> str:
    """The text parts of a `Content`, joined by spaces."""
    return " ".join(p["text"] for p in content.get("parts") or [] if isinstance(p.get("text"), str))


def page(record: RecordedRequest, key: str, items: list[Any], *, default: int, maximum: int) -> Reply:
    """The page of `items` (already JSON) that `pageSize` and `pageToken` ask for, under `key`."""
    size = _page_size(record, default=default, maximum=maximum)
    start = _page_start(record)
    payload: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        payload["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
    return json_reply(200, payload)


def _page_size(record: RecordedRequest, *, default: int, maximum: int) -> int:
    raw = record.query.get("pageSize", [""])[0]
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or int(raw) < 0:
        raise bad_request(f"Invalid value at 'page_size' (TYPE_INT32), \"{raw}\"")
    return min(int(raw), maximum) or default


def _page_start(record: RecordedRequest) -> int:
    token = record.query.get("pageToken", [""])[0]
    if not token:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
        return int(decoded.removeprefix("offset:"))
    except (ValueError, binascii.Error):
        raise bad_request("Invalid page token.") from None
