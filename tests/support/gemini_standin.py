"""A loopback stand-in for the Gemini REST API, for tests that drive the real `google-genai` SDK.

It speaks the Gemini Developer API's wire protocol (paths, JSON field names, the `x-goog-api-key`
header, Google's error JSON, the resumable upload dance) closely enough that the SDK cannot tell
it from the real service, so a client that passes here fails for the same reasons it would fail
against Google. Like the real API it reads both spellings of a field (`mimeType`, `mime_type`):
google-genai 3.x writes camelCase at the top but snake_case inside `inlineData` and `fileData`.

It serves both `/v1beta` and `/v1` (google-genai 3.x defaults to `v1` unless told otherwise with
`HttpOptions(api_version=...)`), records every request for assertions on the wire, and injects
the failures that matter to a client on demand: quota 429s, 5xx, blocked prompts, empty
finishes, malformed JSON, latency and a sliding-window requests-per-minute quota.

Answers are deterministic. `generateContent` echoes the last user turn ("echo: <text>" plus one
"[image image/png 1234 bytes sha256:...]" per image) unless a test scripts a reply; embeddings are
a hashed bag of words, so texts that share words come out close together.
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from tests.support.loopback import Loopback, LoopbackHandler

__all__ = [
    "EMBEDDING_SIZE",
    "MAX_EMBED_BATCH",
    "MODELS",
    "GeminiStandIn",
    "Media",
    "ModelInfo",
    "Prompt",
    "RecordedRequest",
    "StoredFile",
    "bag_of_words_vector",
]

EMBEDDING_SIZE = 3072
MAX_EMBED_BATCH = 100
API_VERSIONS = ("v1beta", "v1")
DEFAULT_API_KEY = "standin-test-key-0123456789"
IMAGE_TOKENS = 258  # what the real API bills for an image up to 384x384
_PUBLIC_HOST = "https://generativelanguage.googleapis.com"
_KINDS = ("generate", "embed", "models", "files")
TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model catalogue, in the shape `models.list` returns it."""

    name: str  # without the "models/" prefix
    display_name: str
    methods: tuple[str, ...]
    input_token_limit: int
    output_token_limit: int
    embedding_size: int | None = None
    description: str = ""
    version: str = "001"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"models/{self.name}",
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description or self.display_name,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
        }
        if "generateContent" in self.methods:
            body.update(temperature=1, topP=0.95, topK=64, maxTemperature=2)
        if self.name.startswith("gemini-2.5"):
            body["thinking"] = True
        return body

    @property
    def generates(self) -> bool:
        return "generateContent" in self.methods

    @property
    def embeds(self) -> bool:
        return "embedContent" in self.methods


_GENERATE = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
_EMBED = ("embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent")
MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gemini-2.5-flash", "Gemini 2.5 Flash", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.5-pro", "Gemini 2.5 Pro", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.0-flash", "Gemini 2.0 Flash", _GENERATE, 1_048_576, 8_192),
    ModelInfo("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite", _GENERATE, 1_048_576, 8_192),
    ModelInfo("gemini-flash-latest", "Gemini Flash Latest", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-embedding-001", "Gemini Embedding 001", _EMBED, 2_048, 1, EMBEDDING_SIZE),
    ModelInfo("text-embedding-004", "Text Embedding 004", ("embedContent",), 2_048, 1, 768, version="004"),
)


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request as it arrived on the wire.

    `kind` is the fault/recording scope ("generate", "embed", "models", "files", or "other");
    `action` the precise call ("generateContent", "streamGenerateContent", "batchEmbedContents",
    "embedContent", "countTokens", "models.list", "models.get", "upload.start", "upload.chunk",
    "files.get", "files.list", "files.delete"). `timestamp` is `time.monotonic()` at arrival;
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


@dataclass(frozen=True)
class Media:
    """An inline or uploaded blob that a prompt refers to, as the stand-in's "model" sees it."""

    mime_type: str
    data: bytes
    file_name: str | None = None  # "files/abc123" when it came in as `fileData`

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> str:
        """`[image image/png 1234 bytes sha256:0123456789ab]` (`[file ...]` for non-images)."""
        what = "image" if self.mime_type.startswith("image/") else "file"
        return f"[{what} {self.mime_type} {len(self.data)} bytes sha256:{self.sha256[:12]}]"


@dataclass(frozen=True)
class Prompt:
    """A parsed `generateContent` request, handed to scripted reply callables."""

    model: str
    contents: list[dict[str, Any]]
    system_instruction: str | None
    generation_config: dict[str, Any]
    last_user_text: str
    media: list[Media]  # blobs of the last user turn, in order
    request: RecordedRequest

    def echo(self) -> str:
        """The default answer: "echo: <last user text>" followed by one description per blob."""
        return " ".join([f"echo: {self.last_user_text}".rstrip(), *(m.describe() for m in self.media)])


ReplyFn = Callable[[Prompt], str | dict[str, Any]]


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
            "source": "UPLOADED",
        }
        if self.display_name:
            body["displayName"] = self.display_name
        if self.state == "FAILED":
            body["error"] = {"code": 3, "message": "File processing failed: the file could not be read."}
        return body


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- embeddings


@functools.lru_cache(maxsize=1 << 16)
def _word_slots(word: str) -> tuple[np.ndarray, np.ndarray]:
    """The positions one word adds to and the signs it adds (cached: a big job repeats words)."""
    digest = hashlib.sha256(word.encode()).digest()
    limits = (128, 128, 128, 768, 768, 3072, 3072, 3072)
    indices = [
        int.from_bytes(digest[slot * 3 : slot * 3 + 2], "big") % limit for slot, limit in enumerate(limits)
    ]
    signs = [1.0 if digest[slot * 3 + 2] & 1 else -1.0 for slot in range(len(limits))]
    return np.array(indices, dtype=np.intp), np.array(signs)


def bag_of_words_vector(text: str, *, task_type: str | None = None, size: int = EMBEDDING_SIZE) -> np.ndarray:
    """The stand-in's embedding of `text`: unit length at full size, prefix-truncated below it.

    Each lowercased word adds +-1 at a few hashed positions, spread so that every Matryoshka
    prefix (128, 768, ...) still carries every word, like the real model keeps most of its
    meaning in the leading dimensions. A little noise seeded by the text and task type makes
    vectors differ per task type and keeps wordless texts from being zero.
    """
    vector = np.zeros(EMBEDDING_SIZE, dtype=np.float64)
    slots = [_word_slots(word) for word in re.findall(r"\w+", text.lower())]
    if slots:
        # Sums of whole numbers: exact in any order, so this equals adding word by word.
        np.add.at(vector, np.concatenate([i for i, _ in slots]), np.concatenate([s for _, s in slots]))
    seed = int.from_bytes(hashlib.sha256(f"{task_type or ''}\0{text}".encode()).digest()[:8], "big")
    vector += np.random.default_rng(seed).normal(0.0, 0.02, EMBEDDING_SIZE)
    vector /= np.linalg.norm(vector)
    return vector[:size].astype(np.float32)


# --------------------------------------------------------------------------- faults


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), dict(headers or {}))


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGES = {
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}


def _error(code: int, message: str, *, status: str | None = None, details: list[Any] | None = None) -> _Reply:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or _STATUS_NAMES.get(code, ""),
    }
    if details:
        error["details"] = details
    return _json_reply(code, {"error": error})


_QUOTA_IDS = {
    ("generate", "per_minute"): "GenerateRequestsPerMinutePerProjectPerModel",
    ("generate", "per_day"): "GenerateRequestsPerDayPerProjectPerModel",
    ("embed", "per_minute"): "EmbedContentRequestsPerMinutePerProjectPerModel",
    ("embed", "per_day"): "EmbedContentRequestsPerDayPerProjectPerModel",
}


def _quota_error(
    request: RecordedRequest,
    *,
    quota: str,
    retry_delay: str | None,
    quota_id: str | None = None,
    limit: int = 10,
    wait_seconds: float | None = None,
) -> _Reply:
    kind = "embed" if request.kind == "embed" else "generate"
    metric = "embed_content" if kind == "embed" else "generate_content"
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}_requests, limit: {limit}"
    )
    details: list[Any] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": f"generativelanguage.googleapis.com/{metric}_requests",
                    "quotaId": quota_id or _QUOTA_IDS[(kind, quota)],
                    "quotaDimensions": {"location": "global", "model": request.model or ""},
                    "quotaValue": str(limit),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        message += f"\nPlease retry in {f'{wait_seconds}s' if wait_seconds is not None else retry_delay}."
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return _error(429, message, details=details)


_GENERATE_ACTIONS = ("generateContent", "streamGenerateContent")


@dataclass
class _Fault:
    on: str | None
    remaining: int
    make: Callable[[RecordedRequest], _Reply]
    actions: tuple[str, ...] | None = None  # narrower than `on`: answers only these calls

    def matches(self, request: RecordedRequest) -> bool:
        return (
            self.remaining > 0
            and (self.on is None or self.on == request.kind)
            and (self.actions is None or request.action in self.actions)
        )


class _ApiError(Exception):
    """Raised inside a handler to answer with a Google error."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _bad_request(message: str) -> _ApiError:
    return _ApiError(_error(400, message))


def _check_scope(on: str | None) -> None:
    if on is not None and on not in _KINDS:
        raise ValueError(f"`on` must be one of {_KINDS} or None, not {on!r}")


# --------------------------------------------------------------------------- the server


class _Handler(LoopbackHandler):
    server_version = "ESF"  # what Google's front end calls itself
    sys_version = ""


class GeminiStandIn(Loopback):
    """A loopback Gemini API on 127.0.0.1 with a random port, its behaviour scripted by the test.

    Use it as a context manager (or `start()` / `stop()`), point the SDK at `base_url` with
    `api_key`, then script answers (`reply`, `answer_with`), inject faults (`fail_next`,
    `latency`, `block_prompt`, `finish`, `malformed_json_next`, `quota`), tune the Files API
    (`processing`, `fail_processing`) and read back what was sent (`requests`, `last`,
    `embedded_texts`, `embed_batch_sizes`, `file`). Every knob is thread-safe.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        models: tuple[ModelInfo, ...] = MODELS,
        api_versions: tuple[str, ...] = API_VERSIONS,
    ) -> None:
        self.api_key = api_key
        self._models = {model.name: model for model in models}
        self._api_versions = api_versions
        self._lock = threading.Lock()
        super().__init__()
        self._records: list[RecordedRequest] = []
        self._replies: collections.deque[str | dict[str, Any] | ReplyFn] = collections.deque()
        self._default_reply: ReplyFn | None = None
        self._faults: list[_Fault] = []
        self._latency: tuple[float, str | None] = (0.0, None)
        self._quota: tuple[int, float, str | None, str] | None = None
        self._quota_windows: dict[str | None, collections.deque[float]] = {}
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._processing: tuple[int, float] = (1, 0.0)
        self._fail_processing = 0

    # ------------------------------------------------------------------ lifecycle

    handler = _Handler

    def _failure(self, exc: Exception) -> _Reply:
        return _error(500, f"stand-in failure: {exc!r}")

    # ------------------------------------------------------------------ scripting answers

    def reply(self, answer: str | dict[str, Any] | ReplyFn, *, times: int = 1) -> None:
        """Queue the answer to the next `times` generate calls.

        A string becomes the model's text; a dict is sent as the whole response body; a
        callable gets the parsed `Prompt` and returns either.
        """
        with self._lock:
            self._replies.extend([answer] * times)

    def answer_with(self, fn: ReplyFn | None) -> None:
        """Replace the default echo with `fn` for every unscripted generate call (None restores it)."""
        with self._lock:
            self._default_reply = fn

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int,
        quota: str = "per_minute",
        retry_delay: str | None = "1s",
        quota_id: str | None = None,
        message: str | None = None,
        on: str | None = None,
    ) -> None:
        """Answer the next `n` requests (of kind `on`, or any) with an HTTP error.

        A 429 carries the real API's QuotaFailure detail, its quotaId naming `quota`
        ("per_minute" or "per_day") unless `quota_id` overrides it, plus a RetryInfo with
        `retry_delay` (None leaves it out). Other codes get Google's usual status and message.
        """
        _check_scope(on)
        if quota not in ("per_minute", "per_day"):
            raise ValueError(f"quota must be 'per_minute' or 'per_day', not {quota!r}")

        def make(request: RecordedRequest) -> _Reply:
            if status == 429:
                return _quota_error(request, quota=quota, retry_delay=retry_delay, quota_id=quota_id)
            return _error(status, message or _STATUS_MESSAGES.get(status, f"stand-in error {status}"))

        self._add_fault(on, n, make)

    def malformed_json_next(self, n: int = 1, *, status: int = 200, on: str | None = None) -> None:
        """Answer the next `n` requests with a truncated JSON body (status 200 unless told)."""
        _check_scope(on)
        self._add_fault(on, n, lambda _: _Reply(status, b'{"candidates": [{"content": {"parts": [{"text": "'))

    def block_prompt(self, reason: str = "SAFETY", *, n: int = 1) -> None:
        """Block the next `n` prompts: `promptFeedback.blockReason` and no candidates, status 200."""

        def make(request: RecordedRequest) -> _Reply:
            feedback: dict[str, Any] = {"blockReason": reason}
            if reason == "SAFETY":
                feedback["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ]
            tokens = _count_tokens(request.json or {})
            return _json_reply(
                200,
                {
                    "promptFeedback": feedback,
                    "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
                    "modelVersion": request.model,
                    "responseId": secrets.token_urlsafe(12),
                },
            )

        self._add_fault("generate", n, make, actions=_GENERATE_ACTIONS)

    def finish(self, reason: str = "SAFETY", *, text: str | None = None, n: int = 1) -> None:
        """End the next `n` generations with `finishReason` = `reason` and no text (or `text`)."""

        def make(request: RecordedRequest) -> _Reply:
            candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
            if text is not None:
                candidate["content"] = {"parts": [{"text": text}], "role": "model"}
            if reason == "SAFETY":
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                ]
            return _json_reply(200, _generate_body(request, candidate, text or ""))

        self._add_fault("generate", n, make, actions=_GENERATE_ACTIONS)

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

    def clear_faults(self) -> None:
        """Drop queued faults and replies, latency and quota."""
        with self._lock:
            self._faults.clear()
            self._replies.clear()
            self._latency = (0.0, None)
            self._quota = None
            self._quota_windows.clear()

    def _add_fault(
        self,
        on: str | None,
        n: int,
        make: Callable[[RecordedRequest], _Reply],
        *,
        actions: tuple[str, ...] | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(_Fault(on, n, make, actions))

    # ------------------------------------------------------------------ files

    def processing(self, *, gets: int = 1, seconds: float = 0.0) -> None:
        """Future uploads stay PROCESSING for their first `gets` GETs and at least `seconds`."""
        with self._lock:
            self._processing = (gets, seconds)

    def fail_processing(self, n: int = 1) -> None:
        """The next `n` uploads end in state FAILED instead of ACTIVE."""
        with self._lock:
            self._fail_processing += n

    def file(self, name: str) -> StoredFile:
        """An uploaded file by "files/abc", "abc" or its URI; KeyError if there is none."""
        with self._lock:
            return self._files[name.rsplit("/", 1)[-1]]

    def files(self) -> list[StoredFile]:
        with self._lock:
            return list(self._files.values())

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
        found = self.requests(kind, action=action)
        if not found:
            raise AssertionError(f"no {kind or ''} {action or ''} request was recorded".replace("  ", " "))
        return found[-1]

    def embedded_texts(self) -> list[str]:
        """Every text sent to batchEmbedContents, in order, over all calls (refused ones too)."""
        texts = []
        for record in self.requests("embed", action="batchEmbedContents"):
            for item in (record.json or {}).get("requests", []):
                texts.append(_text_of(item.get("content") or {}))
        return texts

    def embed_batch_sizes(self) -> list[int]:
        """The number of requests in each batchEmbedContents call."""
        return [
            len((r.json or {}).get("requests", []))
            for r in self.requests("embed", action="batchEmbedContents")
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._records.clear()

    # ------------------------------------------------------------------ dispatch

    _MODEL_PATH = re.compile(r"models/([A-Za-z0-9._-]+)(?::([A-Za-z]+))?")

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Reply | None:
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

    def _route(self, record: RecordedRequest) -> Callable[[], _Reply]:
        """Classify the request (kind, action, model) and pick its handler; no side effects."""
        parts = record.path.strip("/").split("/", 2)
        if parts[0] == "upload" and len(parts) == 3 and parts[2] == "files" and record.method == "POST":
            record.kind, record.api_version = "files", parts[1]
            if "upload_id" in record.query:
                record.action = "upload.chunk"
                return lambda: self._upload_chunk(record)
            record.action = "upload.start"
            return lambda: self._upload_start(record)
        version = parts[0]
        rest = "/".join(parts[1:])
        record.api_version = version
        if version not in self._api_versions:
            return lambda: _error(404, f"Requested entity was not found: unknown API version {version}.")
        if rest == "models" and record.method == "GET":
            record.kind, record.action = "models", "models.list"
            return lambda: self._list_models(record)
        match = self._MODEL_PATH.fullmatch(rest)
        if match:
            record.model, verb = match.group(1), match.group(2)
            if verb is None and record.method == "GET":
                record.kind, record.action = "models", "models.get"
                return lambda: self._get_model(record)
            if record.method == "POST" and verb in ("generateContent", "streamGenerateContent"):
                record.kind, record.action = "generate", verb
                return lambda: self._generate(record, stream=verb == "streamGenerateContent")
            if record.method == "POST" and verb in ("batchEmbedContents", "embedContent"):
                record.kind, record.action = "embed", verb
                return lambda: self._embed(record)
            if record.method == "POST" and verb == "countTokens":
                record.kind, record.action = "generate", "countTokens"
                return lambda: self._count_tokens(record)
        if rest == "files" and record.method == "GET":
            record.kind, record.action = "files", "files.list"
            return lambda: self._list_files(record)
        file_match = re.fullmatch(r"files/([a-z0-9-]+)", rest)
        if file_match and record.method in ("GET", "DELETE"):
            record.kind = "files"
            record.action = "files.get" if record.method == "GET" else "files.delete"
            return lambda: self._file_request(record, file_match.group(1))
        return lambda: _error(404, f"The requested URL {record.path} was not found on this server.")

    def _answer(self, record: RecordedRequest, route: Callable[[], _Reply], body: bytes) -> _Reply:
        # The upload URL is itself the credential, as on the real service: no API key there.
        if record.action != "upload.chunk":
            refused = self._check_key(record)
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
                made = _Reply(200, b"data: " + made.body + b"\r\n\r\n", content_type="text/event-stream")
            return made
        if record.method == "POST" and record.action != "upload.chunk" and body and record.json is None:
            return _bad_request(f"Invalid JSON payload received. Unexpected token.\n{body[:40]!r}").reply
        try:
            return route()
        except _ApiError as refusal:
            return refusal.reply

    def _check_key(self, record: RecordedRequest) -> _Reply | None:
        key = record.api_key
        if not key:
            return _error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return _error(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": "API key not valid. Please pass a valid API key.",
                    },
                ],
            )
        return None

    def _enforce_quota(self, record: RecordedRequest) -> _Reply | None:
        """Called with the lock held."""
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
        return _quota_error(
            record,
            quota=quota,
            retry_delay=f"{max(1, math.ceil(wait))}s",
            limit=rpm,
            wait_seconds=round(wait, 6),
        )

    # ------------------------------------------------------------------ models

    def _model(self, record: RecordedRequest, method: str | None = None) -> ModelInfo:
        model = self._models.get(record.model or "")
        if (
            model is None
            or (method == "generateContent" and not model.generates)
            or (method == "batchEmbedContents" and not model.embeds)
        ):
            suffix = f", or is not supported for {method}" if method else ""
            raise _ApiError(
                _error(
                    404,
                    f"models/{record.model} is not found for API version {record.api_version}{suffix}. "
                    "Call ListModels to see the list of available models and their supported methods.",
                )
            )
        return model

    def _list_models(self, record: RecordedRequest) -> _Reply:
        page_size = _page_size(record, default=50, maximum=1000)
        start = _page_start(record)
        models = list(self._models.values())
        page = models[start : start + page_size]
        payload: dict[str, Any] = {"models": [m.to_json() for m in page]}
        if start + page_size < len(models):
            payload["nextPageToken"] = _page_token(start + page_size)
        return _json_reply(200, payload)

    def _get_model(self, record: RecordedRequest) -> _Reply:
        return _json_reply(200, self._model(record).to_json())

    # ------------------------------------------------------------------ generate

    def _prompt(self, record: RecordedRequest) -> Prompt:
        request = record.json
        if not isinstance(request, dict):
            raise _bad_request("* GenerateContentRequest.contents: contents is not specified\n")
        allowed = {
            "contents",
            "systemInstruction",
            "generationConfig",
            "safetySettings",
            "tools",
            "toolConfig",
            "cachedContent",
            "labels",
        }
        for key in request:
            if key not in allowed and _camel(key) not in allowed:
                raise _bad_request(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        contents = request.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _bad_request("* GenerateContentRequest.contents: contents is not specified\n")
        last_user: dict[str, Any] = {}
        media: list[Media] = []
        for index, content in enumerate(contents):
            role = content.get("role", "user")
            if role not in ("user", "model", "function"):
                raise _bad_request("Please use a valid role: user, model.")
            if not content.get("parts"):
                raise _bad_request(
                    f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n"
                )
            # Every blob must decode and every file be usable, not only the last turn's.
            blobs = [
                self._media(part, f"contents[{index}].parts[{i}]")
                for i, part in enumerate(content["parts"])
                if _is_media(part)
            ]
            if role == "user":
                last_user, media = content, blobs
        system = request.get("systemInstruction") or request.get("system_instruction")
        config = request.get("generationConfig") or request.get("generation_config") or {}
        return Prompt(
            model=record.model or "",
            contents=contents,
            system_instruction=_text_of(system) if system else None,
            generation_config=config,
            last_user_text=_text_of(last_user),
            media=media,
            request=record,
        )

    def _media(self, part: dict[str, Any], where: str) -> Media:
        inline = part.get("inlineData") or part.get("inline_data")
        if inline is not None:
            mime = inline.get("mimeType") or inline.get("mime_type")
            if not mime:
                raise _bad_request(
                    f"* GenerateContentRequest.{where}.inline_data.mime_type: required field\n"
                )
            try:
                data = _decode_bytes(inline.get("data", ""))
            except (binascii.Error, ValueError):
                raise _bad_request(
                    f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
                ) from None
            return Media(mime, data)
        file_data = part.get("fileData") or part.get("file_data") or {}
        uri = file_data.get("fileUri") or file_data.get("file_uri") or ""
        file_id = uri.rstrip("/").rsplit("/files/", 1)[-1] if "/files/" in uri else ""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise _ApiError(
                _error(
                    403,
                    f"You do not have permission to access the File {file_id or uri} or it may not exist.",
                )
            )
        if stored.state != "ACTIVE":
            raise _ApiError(
                _error(
                    400,
                    f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
                    status="FAILED_PRECONDITION",
                )
            )
        mime = file_data.get("mimeType") or file_data.get("mime_type") or stored.mime_type
        return Media(mime, stored.data, stored.name)

    def _generate(self, record: RecordedRequest, *, stream: bool) -> _Reply:
        self._model(record, "generateContent")
        prompt = self._prompt(record)
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
            default = self._default_reply
        answer: str | dict[str, Any]
        if scripted is not None:
            answer = scripted(prompt) if callable(scripted) else scripted
        elif default is not None:
            answer = default(prompt)
        elif prompt.generation_config.get("responseMimeType") == "application/json":
            answer = json.dumps(
                {"echo": prompt.last_user_text, "media": [m.describe() for m in prompt.media]}
            )
        else:
            answer = prompt.echo()
        if isinstance(answer, dict):
            payload = answer
        else:
            finish_reason = "STOP"
            limit = prompt.generation_config.get("maxOutputTokens")
            if isinstance(limit, int) and len(answer.split()) > limit:
                answer, finish_reason = " ".join(answer.split()[:limit]), "MAX_TOKENS"
            candidate = {
                "content": {"parts": [{"text": answer}], "role": "model"},
                "finishReason": finish_reason,
                "index": 0,
            }
            payload = _generate_body(record, candidate, answer)
        if not stream:
            return _json_reply(200, payload)
        return _Reply(200, _sse(payload), content_type="text/event-stream")

    def _count_tokens(self, record: RecordedRequest) -> _Reply:
        self._model(record)
        request = record.json if isinstance(record.json, dict) else {}
        return _json_reply(200, {"totalTokens": _count_tokens(request)})

    # ------------------------------------------------------------------ embed

    def _embed(self, record: RecordedRequest) -> _Reply:
        model = self._model(record, "batchEmbedContents")
        body = record.json if isinstance(record.json, dict) else {}
        items: Any
        if record.action == "embedContent":
            items, label = [body], "EmbedContentRequest"
        else:
            items, label = body.get("requests"), "BatchEmbedContentsRequest"
            if not isinstance(items, list) or not items:
                raise _bad_request(f"* {label}.requests: requests is not specified\n")
            if len(items) > MAX_EMBED_BATCH:
                raise _bad_request(
                    f"* {label}.requests: at most {MAX_EMBED_BATCH} requests can be in one batch\n"
                )
        full = model.embedding_size or EMBEDDING_SIZE
        embeddings: list[np.ndarray] = []
        for index, item in enumerate(items):
            where = f"{label}.requests[{index}]" if label.startswith("Batch") else label
            if label.startswith("Batch"):
                item_model = item.get("model")
                if item_model != f"models/{record.model}":
                    raise _bad_request(
                        f"* {where}.model: Model names should start with `models/` and match the model "
                        f"of the batch request (models/{record.model}), got {item_model!r}.\n"
                    )
            content = item.get("content")
            if not isinstance(content, dict) or not content.get("parts"):
                raise _bad_request(f"* {where}.content: content is not specified\n")
            task_type = item.get("taskType", item.get("task_type"))
            if task_type is not None and task_type not in TASK_TYPES:
                raise _bad_request(
                    f"Invalid value at '{where}.task_type' "
                    f'(type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), "{task_type}"'
                )
            size = item.get("outputDimensionality", item.get("output_dimensionality"))
            if size is None:
                size = full
            if not isinstance(size, int) or not 1 <= size <= full:
                raise _bad_request(
                    f"* {where}.output_dimensionality: must be between 1 and {full}, got {size}\n"
                )
            embeddings.append(bag_of_words_vector(_text_of(content), task_type=task_type, size=size))
        rows = ",".join(f'{{"values": [{_floats(v)}]}}' for v in embeddings)
        if record.action == "embedContent":
            return _Reply(200, f'{{"embedding": {rows}}}'.encode())
        return _Reply(200, f'{{"embeddings": [{rows}]}}'.encode())

    # ------------------------------------------------------------------ files

    def _upload_start(self, record: RecordedRequest) -> _Reply:
        if record.headers.get("x-goog-upload-protocol") != "resumable" or (
            record.headers.get("x-goog-upload-command") != "start"
        ):
            raise _bad_request("Only resumable uploads are supported by this stand-in.")
        declared = record.headers.get("x-goog-upload-header-content-length", "")
        if not declared.isdigit():
            raise _bad_request("Missing X-Goog-Upload-Header-Content-Length.")
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
        url = (
            f"{self.base_url}/upload/{record.api_version}/files"
            f"?upload_id={upload_id}&upload_protocol=resumable"
        )
        return _Reply(
            200,
            b"",
            {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Control-URL": url,
                "X-Goog-Upload-Chunk-Granularity": "8388608",
            },
        )

    def _upload_chunk(self, record: RecordedRequest) -> _Reply:
        upload_id = record.query["upload_id"][0]
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            return _error(404, "Upload session not found or expired.")
        command = record.headers.get("x-goog-upload-command", "")
        offset = record.headers.get("x-goog-upload-offset", "")
        if offset != str(len(upload["data"])):
            return _error(400, f"Invalid X-Goog-Upload-Offset {offset}; expected {len(upload['data'])}.")
        upload["data"].extend(record.body)
        if "finalize" not in command:
            return _Reply(200, b"", {"X-Goog-Upload-Status": "active"})
        if len(upload["data"]) != upload["size"]:
            return _error(
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
        return _json_reply(200, payload, {"X-Goog-Upload-Status": "final"})

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

    def _file_request(self, record: RecordedRequest, file_id: str) -> _Reply:
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                return _error(
                    403, f"You do not have permission to access the File {file_id} or it may not exist."
                )
            if record.method == "DELETE":
                del self._files[file_id]
                return _json_reply(200, {})
            self._advance(stored, count_get=True)
            return _json_reply(200, stored.to_json())

    def _list_files(self, record: RecordedRequest) -> _Reply:
        page_size = _page_size(record, default=10, maximum=100)
        start = _page_start(record)
        with self._lock:
            stored = list(self._files.values())
            payload: dict[str, Any] = {"files": [f.to_json() for f in stored[start : start + page_size]]}
        if start + page_size < len(stored):
            payload["nextPageToken"] = _page_token(start + page_size)
        return _json_reply(200, payload)


# --------------------------------------------------------------------------- helpers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _is_media(part: dict[str, Any]) -> bool:
    return any(key in part for key in ("inlineData", "inline_data", "fileData", "file_data"))


def _decode_bytes(value: str) -> bytes:
    """A proto3 JSON `bytes` field: standard or URL-safe base64, padded or not, as Google accepts.

    google-genai 3.x writes URL-safe base64 (pydantic's `ser_json_bytes="base64"`).
    """
    if not isinstance(value, str):
        raise ValueError("not a string")
    standard = value.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)


def _text_of(content: dict[str, Any]) -> str:
    return " ".join(p["text"] for p in content.get("parts") or [] if isinstance(p.get("text"), str))


def _count_tokens(request: dict[str, Any]) -> int:
    """A rough token count: words of every text part, plus a flat price per blob."""
    contents = list(request.get("contents") or [])
    system = request.get("systemInstruction")
    if isinstance(system, dict):
        contents.append(system)
    tokens = 0
    for content in contents:
        for part in content.get("parts") or []:
            if isinstance(part.get("text"), str):
                tokens += len(part["text"].split())
            elif _is_media(part):
                tokens += IMAGE_TOKENS
    return tokens


def _generate_body(record: RecordedRequest, candidate: dict[str, Any], answer: str) -> dict[str, Any]:
    prompt_tokens = _count_tokens(record.json if isinstance(record.json, dict) else {})
    answer_tokens = len(answer.split())
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": answer_tokens,
            "totalTokenCount": prompt_tokens + answer_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        },
        "modelVersion": record.model,
        "responseId": secrets.token_urlsafe(12),
    }


def _sse(payload: dict[str, Any]) -> bytes:
    """Split a full answer into server-sent events the way streamGenerateContent sends them."""
    candidates = payload.get("candidates") or []
    parts = (candidates[0].get("content") or {}).get("parts") if candidates else None
    text = parts[0].get("text", "") if parts else ""
    if not text:
        return f"data: {json.dumps(payload)}\r\n\r\n".encode()
    words = text.split(" ")
    pieces = [" ".join(words[: len(words) // 2]), " " + " ".join(words[len(words) // 2 :])]
    pieces = [p for p in pieces if p.strip()] or [text]
    events = []
    for index, piece in enumerate(pieces):
        chunk = json.loads(json.dumps(payload))
        chunk["candidates"][0]["content"]["parts"] = [{"text": piece}]
        if index < len(pieces) - 1:
            chunk["candidates"][0].pop("finishReason", None)
        events.append(f"data: {json.dumps(chunk)}\r\n\r\n")
    return "".join(events).encode()


def _floats(vector: np.ndarray) -> str:
    """`vector` as comma-separated JSON numbers, ~3x faster than json.dumps for 3072 floats."""
    return _float_format(len(vector)) % tuple(vector.tolist())


@functools.cache
def _float_format(size: int) -> str:
    return ",".join(["%.7g"] * size)


def _page_size(record: RecordedRequest, *, default: int, maximum: int) -> int:
    raw = record.query.get("pageSize", [""])[0]
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or int(raw) < 0:
        raise _bad_request(f"Invalid value at 'page_size' (TYPE_INT32), \"{raw}\"")
    return min(int(raw), maximum) or default


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_start(record: RecordedRequest) -> int:
    token = record.query.get("pageToken", [""])[0]
    if not token:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
        return int(decoded.removeprefix("offset:"))
    except (ValueError, binascii.Error):
        raise _bad_request("Invalid page token.") from None
