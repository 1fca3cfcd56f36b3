"""The stand-in itself: routing, API-key checks, request recording and fault injection.

Each endpoint family answers in its own module (`models_api`, `generate_api`, `embed_api`,
`files_api`, `batch_api`); this one decides which of them a request reaches, and what happens before it does:
the key is checked, the request recorded, a queued fault or a spent quota may answer in its place,
and latency holds the answer back.
"""

from __future__ import annotations

import collections
import json
import math
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.gemini import embed_api, generate_api, models_api
from tests.support.gemini.batch_api import BatchStore, StoredBatch
from tests.support.gemini.files_api import FileStore, StoredFile
from tests.support.gemini.generate_api import GENERATE_ACTIONS, ReplyFn, Script
from tests.support.gemini.models_api import MODELS, ModelInfo
from tests.support.gemini.replies import (
    STATUS_MESSAGES,
    ApiError,
    Reply,
    bad_request,
    error,
    key_refusal,
    quota_error,
)
from tests.support.gemini.wire import RecordedRequest, text_of
from tests.support.loopback import Loopback, LoopbackHandler

API_VERSIONS = ("v1beta", "v1")
DEFAULT_API_KEY = "standin-test-key-0123456789"
_KINDS = ("generate", "embed", "models", "files", "batch")
_MODEL_PATH = re.compile(r"models/([A-Za-z0-9._-]+)(?::([A-Za-z]+))?")


@dataclass
class _Fault:
    on: str | None
    remaining: int
    make: Callable[[RecordedRequest], Reply]
    actions: tuple[str, ...] | None = None  # narrower than `on`: answers only these calls

    def matches(self, request: RecordedRequest) -> bool:
        return (
            self.remaining > 0
            and (self.on is None or self.on == request.kind)
            and (self.actions is None or request.action in self.actions)
        )


def _check_scope(on: str | None) -> None:
    if on is not None and on not in _KINDS:
        raise ValueError(f"`on` must be one of {_KINDS} or None, not {on!r}")


class _Handler(LoopbackHandler):
    server_version = "ESF"  # what Google's front end calls itself
    sys_version = ""


class GeminiStandIn(Loopback):
    """A loopback Gemini API on 127.0.0.1 with a random port, its behaviour scripted by the test.

    Use it as a context manager (or `start()` / `stop()`), point the SDK at `base_url` with
    `api_key`, then script answers (`reply`, `answer_with`), inject faults (`fail_next`,
    `latency`, `block_prompt`, `finish`, `malformed_json_next`, `quota`), tune the Files API
    (`processing`, `fail_processing`), steer batch jobs (`batch_progress`, `end_batches`,
    `keep_batches_pending`, `fail_batch_requests`, `omit_batch_keys`) and read back what was
    sent (`requests`, `last`, `embedded_texts`, `embed_batch_sizes`, `file`, `batch`). Every knob
    is thread-safe.
    """

    handler = _Handler

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, models: tuple[ModelInfo, ...] = MODELS) -> None:
        super().__init__()
        self.api_key = api_key
        self._models = {model.name: model for model in models}
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._script = Script()
        self._files = FileStore()
        self._batches = BatchStore(self._files, self._answer_in_batch)
        self._faults: list[_Fault] = []
        self._latency: tuple[float, str | None] = (0.0, None)
        self._quota: tuple[int, float, str | None, str] | None = None
        self._quota_windows: dict[str | None, collections.deque[float]] = {}

    def _failure(self, exc: Exception) -> Reply:
        return error(500, f"stand-in failure: {exc!r}")

    # ------------------------------------------------------------------ scripting answers

    def reply(self, answer: str | dict[str, Any] | ReplyFn, *, times: int = 1) -> None:
        """Queue the answer to the next `times` generate calls.

        A string becomes the model's text; a dict is sent as the whole response body; a
        callable gets the parsed `Prompt` and returns either.
        """
        self._script.reply(answer, times=times)

    def answer_with(self, fn: ReplyFn | None) -> None:
        """Replace the default echo with `fn` for every unscripted generate call (None restores it)."""
        self._script.answer_with(fn)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int,
        quota: str = "per_minute",
        retry_delay: str | None = "1s",
        message: str | None = None,
        on: str | None = None,
    ) -> None:
        """Answer the next `n` requests (of kind `on`, or any) with an HTTP error.

        A 429 carries the real API's QuotaFailure detail, its quotaId naming `quota`
        ("per_minute" or "per_day"), plus a RetryInfo with `retry_delay` (None leaves it out).
        Other codes get Google's usual status and message.
        """
        _check_scope(on)
        if quota not in ("per_minute", "per_day"):
            raise ValueError(f"quota must be 'per_minute' or 'per_day', not {quota!r}")

        def make(request: RecordedRequest) -> Reply:
            if status == 429:
                return quota_error(
                    embed=request.kind == "embed", model=request.model, quota=quota, retry_delay=retry_delay
                )
            return error(status, message or STATUS_MESSAGES.get(status, f"stand-in error {status}"))

        self._add_fault(on, n, make)

    def malformed_json_next(self, *, status: int = 200) -> None:
        """Answer the next request with a truncated JSON body (status 200 unless told)."""
        truncated = b'{"candidates": [{"content": {"parts": [{"text": "'
        self._add_fault(None, 1, lambda _: Reply(status, truncated))

    def block_prompt(self, reason: str = "SAFETY") -> None:
        """Block the next prompt: `promptFeedback.blockReason` and no candidates, status 200."""
        self._add_fault(
            "generate", 1, lambda request: generate_api.blocked(request, reason), GENERATE_ACTIONS
        )

    def finish(self, reason: str = "SAFETY", *, text: str | None = None) -> None:
        """End the next generation with `finishReason` = `reason` and no text (or `text`)."""
        self._add_fault(
            "generate", 1, lambda request: generate_api.finished(request, reason, text), GENERATE_ACTIONS
        )

    def stream_pace(self, chunks: int, seconds: float) -> None:
        """From now on `streamGenerateContent` sends each answer in `chunks` events written
        `seconds` apart, as a model writing at a steady rate does; `chunks=0` turns it off."""
        self._script.pace = (chunks, seconds) if chunks > 0 else None

    def think(self, tokens: int) -> None:
        """From now on every answer reports `tokens` thinking tokens (`thoughtsTokenCount`), as a
        thinking model does, within the request's thinkingBudget; 0 turns it off."""
        self._script.thinking = tokens

    def ground_with(self, sources: list[tuple[str, str]]) -> None:
        """From now on a request offering the google_search tool is answered with these pages
        (uri, title) as its `groundingChunks`, in the order given (any URI, hostile ones too)."""
        self._script.sources = tuple(sources)

    def latency(self, seconds: float, *, on: str | None = None) -> None:
        """Answer every request (of kind `on`, or any) `seconds` after it arrived; 0 turns it off.

        The stand-in works out its answer first and holds it for the rest of the time, like a
        server whose latency includes its own work.
        """
        _check_scope(on)
        with self._lock:
            self._latency = (seconds, on)

    def quota(
        self, rpm: int | None, *, window: float = 60.0, on: str | None = None, quota: str = "per_minute"
    ) -> None:
        """Allow at most `rpm` requests per model in any sliding `window` seconds; None lifts it.

        Requests over the limit get the real per-minute 429 with a RetryInfo saying when the
        oldest counted request leaves the window. Refused requests do not count.
        """
        _check_scope(on)
        with self._lock:
            self._quota = None if rpm is None else (rpm, window, on, quota)
            self._quota_windows.clear()

    def _add_fault(
        self,
        on: str | None,
        n: int,
        make: Callable[[RecordedRequest], Reply],
        actions: tuple[str, ...] | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(_Fault(on, n, make, actions))

    # ------------------------------------------------------------------ files

    def processing(self, *, gets: int = 1, seconds: float = 0.0) -> None:
        """Future uploads stay PROCESSING for their first `gets` GETs and at least `seconds`."""
        self._files.processing(gets=gets, seconds=seconds)

    def fail_processing(self, n: int = 1) -> None:
        """The next `n` uploads end in state FAILED instead of ACTIVE."""
        self._files.fail_processing(n)

    def file(self, name: str) -> StoredFile:
        """An uploaded file by "files/abc", "abc" or its URI; KeyError if there is none."""
        return self._files.file(name)

    def files(self) -> list[StoredFile]:
        """Every uploaded file, oldest first."""
        return self._files.files()

    # ------------------------------------------------------------------ batches

    def batch_progress(self, *, pending_gets: int = 1, running_gets: int = 1) -> None:
        """Batch jobs created from now on answer BATCH_STATE_PENDING to their first `pending_gets`
        GETs, BATCH_STATE_RUNNING to the next `running_gets`, then their final state (1 and 1
        unless told)."""
        self._batches.progress(pending_gets=pending_gets, running_gets=running_gets)

    def end_batches(self, state: str, *, n: int = 1) -> None:
        """The next `n` batch jobs created end in `state` ("FAILED", "EXPIRED" or "CANCELLED")
        instead of SUCCEEDED, with no results."""
        self._batches.end_next(state, n)

    def keep_batches_pending(self, n: int = 1) -> None:
        """The next `n` batch jobs created stay BATCH_STATE_PENDING until they are cancelled."""
        self._batches.keep_pending(n)

    def fail_batch_requests(
        self,
        *,
        keys: Collection[str] = (),
        indexes: Collection[int] = (),
        code: int = 500,
        message: str = "Internal error encountered.",
    ) -> None:
        """From now on, the requests of a succeeding batch with one of these metadata / line
        `keys` (or at one of these input positions) get `{"error": {"code", "message"}}` in
        place of a response."""
        self._batches.fail_requests(keys=keys, indexes=indexes, code=code, message=message)

    def omit_batch_keys(self, omit: bool = True) -> None:
        """Inline results of batches finishing from now on leave out their `metadata` (and so the
        key), as users have reported the real service doing; they stay in input order."""
        self._batches.omit_metadata(omit)

    def batch(self, name: str) -> StoredBatch:
        """A batch job by "batches/abc" or "abc" (its requests, state, GETs); KeyError if none."""
        return self._batches.batch(name)

    def batches(self) -> list[StoredBatch]:
        """Every batch job, oldest first."""
        return self._batches.batches()

    def _answer_in_batch(self, model: str, request: dict[str, Any]) -> Reply:
        """One request of a batch, answered as `generateContent` answers it: a queued
        `block_prompt`, `finish` or `fail_next(on="generate")` applies to it, in input order.

        These requests are not recorded (`requests()` holds what came over HTTP); read them
        with `batch(name).requests`.
        """
        body = {k: v for k, v in request.items() if k != "model"}  # an inlined request may name it
        record = RecordedRequest(
            method="POST",
            path=f"/v1beta/models/{model}:generateContent",
            query={},
            headers={},
            body=json.dumps(body).encode(),
            json=body,
            timestamp=time.monotonic(),
            kind="generate",
            action="generateContent",
            api_version="v1beta",
            model=model,
        )
        with self._lock:
            fault = next((f for f in self._faults if f.on == "generate" and f.matches(record)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
        if fault is not None:
            return fault.make(record)
        try:
            return generate_api.generate(self._models, self._files, self._script, record)
        except ApiError as refusal:
            return refusal.reply

    # ------------------------------------------------------------------ records

    def requests(self, kind: str | None = None, *, action: str | None = None) -> list[RecordedRequest]:
        """Recorded requests in arrival order, optionally only one kind and/or action."""
        with self._lock:
            return [
                r
                for r in self._records
                if (kind is None or r.kind == kind) and (action is None or r.action == action)
            ]

    def last(self, kind: str | None = None, *, action: str | None = None) -> RecordedRequest:
        """The latest recorded request of that kind and/or action; AssertionError if there is none."""
        found = self.requests(kind, action=action)
        if not found:
            raise AssertionError(f"no {kind or ''} {action or ''} request was recorded".replace("  ", " "))
        return found[-1]

    def embedded_texts(self) -> list[str]:
        """Every text sent to batchEmbedContents, in order, over all calls (refused ones too)."""
        return [
            text_of(item.get("content") or {})
            for record in self.requests("embed", action="batchEmbedContents")
            for item in (record.json or {}).get("requests", [])
        ]

    def embed_batch_sizes(self) -> list[int]:
        """The number of requests in each batchEmbedContents call."""
        return [
            len((r.json or {}).get("requests", []))
            for r in self.requests("embed", action="batchEmbedContents")
        ]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._records.clear()

    # ------------------------------------------------------------------ dispatch

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply | None:
        split = urlsplit(target)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        record = RecordedRequest(
            method=method,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            json=parsed,
            timestamp=time.monotonic(),
        )
        route = self._route(record)
        with self._lock:
            self._records.append(record)
            delay, delay_on = self._latency
        reply = self._answer(record, route, body)
        # Latency is the time the server takes to answer, its own work included (as a real
        # server's is), so the stand-in's CPU time does not add to what a benchmark measures.
        held = record.timestamp + delay - time.monotonic()
        if delay and (delay_on is None or delay_on == record.kind) and held > 0 and self._stopping.wait(held):
            return None
        record.status = reply.status
        if record.action == "upload.chunk" and "x-goog-upload-status" not in map(str.lower, reply.headers):
            # Without this header the SDK retries the chunk with sleeps of 1, 2, 4 s.
            reply.headers["x-goog-upload-status"] = "final"
        return reply

    def _route(self, record: RecordedRequest) -> Callable[[], Reply]:
        """Classify the request (kind, action, model) and pick its handler; no side effects."""
        parts = record.path.strip("/").split("/", 2)
        if parts[0] == "upload" and len(parts) == 3 and parts[2] == "files" and record.method == "POST":
            record.kind, record.api_version = "files", parts[1]
            if "upload_id" in record.query:
                record.action = "upload.chunk"
                return lambda: self._files.upload_chunk(record)
            record.action = "upload.start"
            return lambda: self._files.start_upload(record, self.base_url)
        if parts[0] == "download" and len(parts) == 3:
            # The public host serves results under /download/; the SDK, given a base URL, asks
            # the API path: both are served.
            parts = parts[1:]
        version = parts[0]
        rest = "/".join(parts[1:])
        record.api_version = version
        if version not in API_VERSIONS:
            return lambda: error(404, f"Requested entity was not found: unknown API version {version}.")
        if rest == "models" and record.method == "GET":
            record.kind, record.action = "models", "models.list"
            return lambda: models_api.list_models(self._models, record)
        match = _MODEL_PATH.fullmatch(rest)
        if match:
            record.model, verb = match.group(1), match.group(2)
            if verb is None and record.method == "GET":
                record.kind, record.action = "models", "models.get"
                return lambda: models_api.get_model(self._models, record)
            if record.method == "POST" and verb in GENERATE_ACTIONS:
                record.kind, record.action = "generate", verb
                return lambda: generate_api.generate(self._models, self._files, self._script, record)
            if record.method == "POST" and verb in ("batchEmbedContents", "embedContent"):
                record.kind, record.action = "embed", verb
                return lambda: embed_api.embed(self._models, record)
            if record.method == "POST" and verb == "countTokens":
                record.kind, record.action = "generate", "countTokens"
                return lambda: generate_api.count_tokens(self._models, record)
            if record.method == "POST" and verb == "batchGenerateContent":
                record.kind, record.action = "batch", "batches.create"
                return lambda: self._batches.create(self._models, record)
        if rest == "batches" and record.method == "GET":
            record.kind, record.action = "batch", "batches.list"
            return lambda: self._batches.list(record)
        batch_match = re.fullmatch(r"batches/([A-Za-z0-9_-]+)(:cancel)?", rest)
        if batch_match:
            batch_id, cancel = batch_match.group(1), batch_match.group(2)
            record.kind = "batch"
            if cancel and record.method == "POST":
                record.action = "batches.cancel"
                return lambda: self._batches.cancel(batch_id)
            if not cancel and record.method == "GET":
                record.action = "batches.get"
                return lambda: self._batches.get(batch_id)
            if not cancel and record.method == "DELETE":
                record.action = "batches.delete"
                return lambda: self._batches.delete(batch_id)
        download = re.fullmatch(r"files/([a-z0-9-]+):download", rest)
        if download and record.method == "GET":
            record.kind, record.action = "files", "files.download"
            return lambda: self._files.download(download.group(1))
        if rest == "files" and record.method == "GET":
            record.kind, record.action = "files", "files.list"
            return lambda: self._files.list_files(record)
        file_match = re.fullmatch(r"files/([a-z0-9-]+)", rest)
        if file_match and record.method in ("GET", "DELETE"):
            record.kind = "files"
            record.action = "files.get" if record.method == "GET" else "files.delete"
            return lambda: self._files.get_or_delete(record, file_match.group(1))
        return lambda: error(404, f"The requested URL {record.path} was not found on this server.")

    def _answer(self, record: RecordedRequest, route: Callable[[], Reply], body: bytes) -> Reply:
        # The upload URL is itself the credential, as on the real service: no API key there.
        if record.action != "upload.chunk":
            refused = key_refusal(record.api_key, self.api_key)
            if refused is not None:
                return refused
        with self._lock:
            fault = next((f for f in self._faults if f.matches(record)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
            refused = None if fault is not None else self._enforce_quota(record)
        if refused is not None:
            return refused
        if fault is not None:
            made = fault.make(record)
            if record.action == "streamGenerateContent" and made.status == 200 and made.body.startswith(b"{"):
                made = Reply(200, b"data: " + made.body + b"\r\n\r\n", content_type="text/event-stream")
            return made
        if record.method == "POST" and record.action != "upload.chunk" and body and record.json is None:
            return bad_request(f"Invalid JSON payload received. Unexpected token.\n{body[:40]!r}").reply
        try:
            return route()
        except ApiError as refusal:
            return refusal.reply

    def _enforce_quota(self, record: RecordedRequest) -> Reply | None:
        """The 429 for a request over the sliding-window quota, else None (it counts); lock held."""
        if self._quota is None:
            return None
        rpm, window, on, quota = self._quota
        if on is not None and on != record.kind:
            return None
        now = time.monotonic()
        admitted = self._quota_windows.setdefault(record.model, collections.deque())
        while admitted and admitted[0] <= now - window:
            admitted.popleft()
        if len(admitted) < rpm:
            admitted.append(now)
            return None
        wait = admitted[0] + window - now
        return quota_error(
            embed=record.kind == "embed",
            model=record.model,
            quota=quota,
            retry_delay=f"{max(1, math.ceil(wait))}s",
            limit=rpm,
            wait_seconds=round(wait, 6),
        )
