"""`generateContent`, `streamGenerateContent` (server-sent events) and `countTokens`.

A prompt is read the way the real API reads it (both spellings of a field, every blob decoded,
every file usable) and answered with a scripted reply or, by default, an echo of the last user
turn: "echo: <text>" plus one "[image image/png 1234 bytes sha256:...]" per image.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.gemini.files_api import FileStore
from tests.support.gemini.models_api import ModelInfo, find_model
from tests.support.gemini.replies import Reply, bad_request, json_reply
from tests.support.gemini.wire import RecordedRequest, text_of

GENERATE_ACTIONS = ("generateContent", "streamGenerateContent")
#: The pages a grounded answer cites by default: (uri, title), as `groundingChunks[].web`.
DEFAULT_SOURCES = (
    ("https://example.org/search/one", "example.org"),
    ("https://docs.example.com/guide?page=2", "The guide, page 2"),
)
IMAGE_TOKENS = 258  # what the real API bills for an image up to 384x384
# The fields a GenerateContentRequest may have; any other is refused, as Google does.
_FIELDS = frozenset(
    [
        "contents",
        "systemInstruction",
        "generationConfig",
        "safetySettings",
        "tools",
        "toolConfig",
        "cachedContent",
        "labels",
    ]
)


@dataclass(frozen=True)
class Media:
    """An inline or uploaded blob that a prompt refers to, as the stand-in's "model" sees it."""

    mime_type: str
    data: bytes

    def describe(self) -> str:
        """`[image image/png 1234 bytes sha256:0123456789ab]` (`[file ...]` for non-images)."""
        what = "image" if self.mime_type.startswith("image/") else "file"
        digest = hashlib.sha256(self.data).hexdigest()
        return f"[{what} {self.mime_type} {len(self.data)} bytes sha256:{digest[:12]}]"


@dataclass(frozen=True)
class Prompt:
    """A parsed `generateContent` request, handed to scripted reply callables."""

    model: str
    system_instruction: str | None
    generation_config: dict[str, Any]
    last_user_text: str
    media: list[Media]  # blobs of the last user turn, in order

    def echo(self) -> str:
        """The default answer: "echo: <last user text>" followed by one description per blob."""
        return " ".join([f"echo: {self.last_user_text}".rstrip(), *(m.describe() for m in self.media)])


ReplyFn = Callable[[Prompt], str | dict[str, Any]]


class Script:
    """The answers a test queued (`reply`) and the one that stands in for the echo (`answer_with`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: collections.deque[str | dict[str, Any] | ReplyFn] = collections.deque()
        self._default: ReplyFn | None = None
        #: (chunks, seconds): streamed answers go out in this many events, this far apart.
        self.pace: tuple[int, float] | None = None
        #: The (uri, title) pairs a request offered the google_search tool is answered with.
        self.sources: tuple[tuple[str, str], ...] = DEFAULT_SOURCES
        #: Thinking tokens a thinking model reports (`thoughtsTokenCount`) for each answer, within
        #: the request's thinkingBudget (none with a budget of 0).
        self.thinking = 0

    def reply(self, answer: str | dict[str, Any] | ReplyFn, *, times: int) -> None:
        with self._lock:
            self._queued.extend([answer] * times)

    def answer_with(self, fn: ReplyFn | None) -> None:
        with self._lock:
            self._default = fn

    def answer(self, prompt: Prompt) -> str | dict[str, Any]:
        """The next queued answer, else the default, else the echo (as JSON when JSON is asked for)."""
        with self._lock:
            scripted = self._queued.popleft() if self._queued else None
            default = self._default
        if scripted is not None:
            return scripted(prompt) if callable(scripted) else scripted
        if default is not None:
            return default(prompt)
        if prompt.generation_config.get("responseMimeType") == "application/json":
            return json.dumps({"echo": prompt.last_user_text, "media": [m.describe() for m in prompt.media]})
        return prompt.echo()


def generate(
    models: dict[str, ModelInfo], files: FileStore, script: Script, record: RecordedRequest
) -> Reply:
    """`generateContent` or `streamGenerateContent`: the script's answer, cut at `maxOutputTokens`."""
    find_model(models, record, "generateContent")
    prompt = _prompt(files, record)
    answer = script.answer(prompt)
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
        if _offers_search(record.json):
            candidate["groundingMetadata"] = _grounding(prompt, script.sources)
        payload = _generate_body(record, candidate, answer, thinking=_thoughts(prompt, script.thinking))
    if record.action == "generateContent":
        return json_reply(200, payload)
    if script.pace is not None:
        chunks, delay = script.pace
        events = _events(payload, chunks)
        return Reply(200, b"".join(events), content_type="text/event-stream", pieces=events, pause=delay)
    return Reply(200, _sse(payload), content_type="text/event-stream")


def _events(payload: dict[str, Any], chunks: int) -> list[bytes]:
    """The answer of `payload` as `chunks` server-sent events of about equal length (the last one
    carrying the finish reason), as a steadily writing model sends them."""
    candidates = payload.get("candidates") or []
    parts = (candidates[0].get("content") or {}).get("parts") if candidates else None
    text = parts[0].get("text", "") if parts else ""
    if not text or chunks <= 1:
        return [f"data: {json.dumps(payload)}\r\n\r\n".encode()]
    size = -(-len(text) // chunks)
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    events = []
    for index, piece in enumerate(pieces):
        chunk = json.loads(json.dumps(payload))
        chunk["candidates"][0]["content"]["parts"] = [{"text": piece}]
        if index < len(pieces) - 1:
            # Google sends the finish reason and the grounding metadata with the last chunk.
            chunk["candidates"][0].pop("finishReason", None)
            chunk["candidates"][0].pop("groundingMetadata", None)
        events.append(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    return events


def _offers_search(request: Any) -> bool:
    """Whether a GenerateContentRequest offers the Google Search tool (either spelling)."""
    tools = request.get("tools") if isinstance(request, dict) else None
    return any(
        isinstance(tool, dict) and ("googleSearch" in tool or "google_search" in tool) for tool in tools or []
    )


def _grounding(prompt: Prompt, sources: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """`groundingMetadata` as Google sends it for an answer grounded in a search: the queries run,
    the pages found (`groundingChunks[].web`), which part of the answer each supports, and the
    search suggestions' rendered entry point."""
    return {
        "webSearchQueries": [prompt.last_user_text or "search"],
        "searchEntryPoint": {"renderedContent": "<div>search suggestions</div>"},
        "groundingChunks": [{"web": {"uri": uri, "title": title}} for uri, title in sources],
        "groundingSupports": [
            {"segment": {"startIndex": 0, "endIndex": 4, "text": "echo"}, "groundingChunkIndices": [i]}
            for i in range(len(sources))
        ],
    }


def finished(record: RecordedRequest, reason: str, text: str | None) -> Reply:
    """A generation that ends with `finishReason` = `reason` and no text (or `text`)."""
    candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
    if text is not None:
        candidate["content"] = {"parts": [{"text": text}], "role": "model"}
    if reason == "SAFETY":
        candidate["safetyRatings"] = [
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
        ]
    return json_reply(200, _generate_body(record, candidate, text or ""))


def blocked(record: RecordedRequest, reason: str) -> Reply:
    """A blocked prompt: `promptFeedback.blockReason` and no candidates, status 200."""
    feedback: dict[str, Any] = {"blockReason": reason}
    if reason == "SAFETY":
        feedback["safetyRatings"] = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ]
    tokens = _count_tokens(record.json or {})
    return json_reply(
        200,
        {
            "promptFeedback": feedback,
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
            "modelVersion": record.model,
            "responseId": secrets.token_urlsafe(12),
        },
    )


def count_tokens(models: dict[str, ModelInfo], record: RecordedRequest) -> Reply:
    """`countTokens`: words of every text part, plus a flat price per blob."""
    find_model(models, record)
    return json_reply(200, {"totalTokens": _count_tokens(record.payload)})


def _prompt(files: FileStore, record: RecordedRequest) -> Prompt:
    request = record.json
    if not isinstance(request, dict):
        raise bad_request("* GenerateContentRequest.contents: contents is not specified\n")
    for key in request:
        if key not in _FIELDS and _camel(key) not in _FIELDS:
            raise bad_request(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        raise bad_request("* GenerateContentRequest.contents: contents is not specified\n")
    last_user: dict[str, Any] = {}
    media: list[Media] = []
    for index, content in enumerate(contents):
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise bad_request("Please use a valid role: user, model.")
        if not content.get("parts"):
            raise bad_request(
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n"
            )
        # Every blob must decode and every file be usable, not only the last turn's.
        blobs = [
            _media(files, part, f"contents[{index}].parts[{i}]")
            for i, part in enumerate(content["parts"])
            if _is_media(part)
        ]
        if role == "user":
            last_user, media = content, blobs
    system = request.get("systemInstruction") or request.get("system_instruction")
    return Prompt(
        model=record.model or "",
        system_instruction=text_of(system) if system else None,
        generation_config=request.get("generationConfig") or request.get("generation_config") or {},
        last_user_text=text_of(last_user),
        media=media,
    )


def _media(files: FileStore, part: dict[str, Any], where: str) -> Media:
    inline = part.get("inlineData") or part.get("inline_data")
    if inline is not None:
        mime = inline.get("mimeType") or inline.get("mime_type")
        if not mime:
            raise bad_request(f"* GenerateContentRequest.{where}.inline_data.mime_type: required field\n")
        try:
            data = _decode_bytes(inline.get("data", ""))
        except (binascii.Error, ValueError):
            raise bad_request(
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            ) from None
        return Media(mime, data)
    file_data = part.get("fileData") or part.get("file_data") or {}
    uri = file_data.get("fileUri") or file_data.get("file_uri") or ""
    file_id = uri.rstrip("/").rsplit("/files/", 1)[-1] if "/files/" in uri else ""
    stored = files.usable(file_id, uri)
    return Media(file_data.get("mimeType") or file_data.get("mime_type") or stored.mime_type, stored.data)


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


def _count_tokens(request: dict[str, Any]) -> int:
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


def _thoughts(prompt: Prompt, thinking: int) -> int:
    """The thinking tokens an answer reports: `thinking`, within the request's thinkingBudget."""
    config = prompt.generation_config.get("thinkingConfig") or {}
    budget = config.get("thinkingBudget", config.get("thinking_budget"))
    if isinstance(budget, int) and budget >= 0:
        return min(thinking, budget)
    return thinking


def _generate_body(
    record: RecordedRequest, candidate: dict[str, Any], answer: str, *, thinking: int = 0
) -> dict[str, Any]:
    prompt_tokens = _count_tokens(record.payload)
    answer_tokens = len(answer.split())
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": prompt_tokens + answer_tokens + thinking,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if thinking:
        # As Google reports it: thoughts apart from the candidates, both in the total.
        usage["thoughtsTokenCount"] = thinking
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
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
            # Google sends the finish reason and the grounding metadata with the last chunk.
            chunk["candidates"][0].pop("finishReason", None)
            chunk["candidates"][0].pop("groundingMetadata", None)
        events.append(f"data: {json.dumps(chunk)}\r\n\r\n")
    return "".join(events).encode()
