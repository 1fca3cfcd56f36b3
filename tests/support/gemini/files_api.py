"""The Files API: resumable uploads, `files.get` / `files.list` / `files.delete`, the
PROCESSING -> ACTIVE (or FAILED) states a client must wait through before a prompt may use a file,
and the files Gemini writes itself (a batch job's results), which `files.download` reads."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.gemini.replies import ApiError, Reply, bad_request, error, json_reply
from tests.support.gemini.wire import RecordedRequest, page

_PUBLIC_HOST = "https://generativelanguage.googleapis.com"


@dataclass
class StoredFile:
    """A file uploaded through the Files API, with its bytes and processing state."""

    id: str
    mime_type: str
    display_name: str | None
    data: bytes
    created: datetime
    uploaded_at: float
    gets_left: int
    ready_after: float
    will_fail: bool
    state: str = "PROCESSING"
    gets: int = 0
    #: "UPLOADED" by a client, or "GENERATED" by Gemini (only those can be downloaded).
    source: str = "UPLOADED"

    @property
    def name(self) -> str:
        return f"files/{self.id}"

    @property
    def uri(self) -> str:
        return f"{_PUBLIC_HOST}/v1beta/files/{self.id}"

    def to_json(self) -> dict[str, Any]:
        stamp = _rfc3339(self.created)
        body: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": stamp,
            "updateTime": stamp,
            "expirationTime": _rfc3339(self.created + timedelta(hours=48)),
            # The real service sends base64 of the hex digest, odd as that is.
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).hexdigest().encode()).decode(),
            "uri": self.uri,
            "state": self.state,
            "source": self.source,
        }
        if self.source == "GENERATED":
            body["downloadUri"] = f"{_PUBLIC_HOST}/download/v1beta/files/{self.id}:download?alt=media"
        if self.display_name:
            body["displayName"] = self.display_name
        if self.state == "FAILED":
            body["error"] = {"code": 3, "message": "File processing failed: the file could not be read."}
        return body


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _no_such_file(file_id: str) -> Reply:
    return error(403, f"You do not have permission to access the File {file_id} or it may not exist.")


class FileStore:
    """The uploaded files and the uploads still under way; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._processing: tuple[int, float] = (1, 0.0)
        self._fail_processing = 0

    def processing(self, *, gets: int, seconds: float) -> None:
        """Future uploads stay PROCESSING for their first `gets` GETs and at least `seconds`."""
        with self._lock:
            self._processing = (gets, seconds)

    def fail_processing(self, n: int) -> None:
        """The next `n` uploads end in state FAILED instead of ACTIVE."""
        with self._lock:
            self._fail_processing += n

    def file(self, name: str) -> StoredFile:
        """An uploaded file by "files/abc", "abc" or its URI; KeyError if there is none."""
        with self._lock:
            return self._files[name.rsplit("/", 1)[-1]]

    def files(self) -> list[StoredFile]:
        """Every uploaded file, oldest first."""
        with self._lock:
            return list(self._files.values())

    def usable(self, file_id: str, uri: str) -> StoredFile:
        """The ACTIVE file a prompt's `fileData` names (by `uri`); Google's refusal otherwise."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(_no_such_file(file_id or uri))
        if stored.state != "ACTIVE":
            raise ApiError(
                error(
                    400,
                    f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
                    status="FAILED_PRECONDITION",
                )
            )
        return stored

    def start_upload(self, record: RecordedRequest, base_url: str) -> Reply:
        """`POST upload/VERSION/files` with `start`: open a session and answer its upload URL."""
        if record.headers.get("x-goog-upload-protocol") != "resumable" or (
            record.headers.get("x-goog-upload-command") != "start"
        ):
            raise bad_request("Only resumable uploads are supported by this stand-in.")
        declared = record.headers.get("x-goog-upload-header-content-length", "")
        if not declared.isdigit():
            raise bad_request("Missing X-Goog-Upload-Header-Content-Length.")
        meta = (record.json or {}).get("file") or {}
        upload_id = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads[upload_id] = {
                "size": int(declared),
                "mime_type": record.headers.get("x-goog-upload-header-content-type")
                or meta.get("mimeType", meta.get("mime_type"))
                or "application/octet-stream",
                "display_name": meta.get("displayName", meta.get("display_name")),
                "name": meta.get("name"),
                "data": bytearray(),
            }
        url = f"{base_url}/upload/{record.api_version}/files?upload_id={upload_id}&upload_protocol=resumable"
        return Reply(
            200,
            b"",
            {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Control-URL": url,
                "X-Goog-Upload-Chunk-Granularity": "8388608",
            },
        )

    def upload_chunk(self, record: RecordedRequest) -> Reply:
        """A chunk of an upload session; the one with `finalize` stores the file."""
        upload_id = record.query["upload_id"][0]
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            return error(404, "Upload session not found or expired.")
        command = record.headers.get("x-goog-upload-command", "")
        offset = record.headers.get("x-goog-upload-offset", "")
        if offset != str(len(upload["data"])):
            return error(400, f"Invalid X-Goog-Upload-Offset {offset}; expected {len(upload['data'])}.")
        upload["data"].extend(record.body)
        if "finalize" not in command:
            return Reply(200, b"", {"X-Goog-Upload-Status": "active"})
        if len(upload["data"]) != upload["size"]:
            return error(
                400, f"Upload size {len(upload['data'])} does not match the declared {upload['size']} bytes."
            )
        with self._lock:
            del self._uploads[upload_id]
            gets, seconds = self._processing
            will_fail = self._fail_processing > 0
            self._fail_processing -= int(will_fail)
            file_id = (upload["name"] or "").removeprefix("files/") or secrets.token_hex(6)
            stored = StoredFile(
                id=file_id,
                mime_type=upload["mime_type"],
                display_name=upload["display_name"],
                data=bytes(upload["data"]),
                created=datetime.now(UTC),
                uploaded_at=time.monotonic(),
                gets_left=gets,
                ready_after=seconds,
                will_fail=will_fail,
            )
            self._advance(stored, count_get=False)
            self._files[file_id] = stored
            payload = {"file": stored.to_json()}
        return json_reply(200, payload, {"X-Goog-Upload-Status": "final"})

    def _advance(self, stored: StoredFile, *, count_get: bool) -> None:
        """Move a PROCESSING file on once its GETs and seconds are spent (lock held)."""
        if stored.state != "PROCESSING":
            return
        if count_get:
            stored.gets += 1
        # The upload itself answers PROCESSING unless no GETs are asked for; then the first
        # `gets_left` GETs still see PROCESSING and the next one sees the final state.
        gets_spent = stored.gets > stored.gets_left if count_get else stored.gets_left == 0
        waited = time.monotonic() - stored.uploaded_at >= stored.ready_after
        if gets_spent and waited:
            stored.state = "FAILED" if stored.will_fail else "ACTIVE"

    def add_generated(
        self, file_id: str, mime_type: str, data: bytes, display_name: str | None
    ) -> StoredFile:
        """Keep a file Gemini wrote itself (ACTIVE at once, downloadable), as a finished batch does."""
        stored = StoredFile(
            id=file_id,
            mime_type=mime_type,
            display_name=display_name,
            data=data,
            created=datetime.now(UTC),
            uploaded_at=time.monotonic(),
            gets_left=0,
            ready_after=0.0,
            will_fail=False,
            state="ACTIVE",
            source="GENERATED",
        )
        with self._lock:
            self._files[file_id] = stored
        return stored

    def download(self, file_id: str) -> Reply:
        """`GET files/ID:download?alt=media`: the bytes of a generated file; uploads cannot be
        downloaded, as on the real service."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return _no_such_file(file_id)
        if stored.source != "GENERATED":
            return error(400, f"The File {file_id} was uploaded and cannot be downloaded.")
        return Reply(200, stored.data, content_type="application/octet-stream")

    def get_or_delete(self, record: RecordedRequest, file_id: str) -> Reply:
        """`GET` or `DELETE files/ID`; a GET moves a PROCESSING file on."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                return _no_such_file(file_id)
            if record.method == "DELETE":
                del self._files[file_id]
                return json_reply(200, {})
            self._advance(stored, count_get=True)
            return json_reply(200, stored.to_json())

    def list_files(self, record: RecordedRequest) -> Reply:
        """`GET files`: one page of the uploaded files."""
        with self._lock:
            listed = [f.to_json() for f in self._files.values()]
        return page(record, "files", listed, default=10, maximum=100)
