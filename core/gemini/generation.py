"""Asking Gemini: a prompt or a conversation, optional images, and an answer that is never None.

A conversation is a list of `Turn`s, oldest first, ending with the user's; Slack threads persist
theirs and replay them. Every answer is checked before it is returned: a blocked prompt, an
answer stopped for safety or recitation, and an empty answer each raise with the reason, so a
caller always has text to show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

from google.genai import types

from core.errors import InvalidInput
from core.gemini.client import GeminiClient
from core.gemini.failures import AnswerStopped, BadResponse, EmptyAnswer, PromptBlocked
from core.gemini.files import upload_image
from core.gemini.grounding import Source, merged, search_tools, sources_of
from core.gemini.images import ImageInput
from core.gemini.ratelimit import RateLimiter

Role = Literal["user", "model"]

# Room left in a request for the JSON around its parts.
_ENVELOPE = 4096

_BLOCKED_BECAUSE = {
    "SAFETY": "it was judged unsafe",
    "BLOCKLIST": "it contains a term on a blocklist",
    "PROHIBITED_CONTENT": "it touches on prohibited content",
    "IMAGE_SAFETY": "an image in it was judged unsafe",
    "OTHER": "of a policy Gemini did not name",
}
_STOPPED_BECAUSE = {
    "SAFETY": "it was judged unsafe",
    "RECITATION": "it repeated published material too closely (ask for a summary in other words)",
    "PROHIBITED_CONTENT": "it touched on prohibited content",
    "BLOCKLIST": "it contained a term on a blocklist",
    "SPII": "it contained sensitive personal information",
    "IMAGE_SAFETY": "it was judged unsafe",
    "LANGUAGE": "it was in a language Gemini does not support",
    "MALFORMED_FUNCTION_CALL": "the model produced a malformed function call",
    "UNEXPECTED_TOOL_CALL": "the model called a tool that was not offered",
    "OTHER": "of a reason Gemini did not name",
}


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: the user's (text and images) or the model's."""

    role: Role
    text: str
    images: tuple[ImageInput, ...] = ()


@dataclass(frozen=True)
class Usage:
    """Tokens billed for one answer (`thinking` is part of `answer` on the bill)."""

    prompt: int
    answer: int
    thinking: int
    total: int


@dataclass(frozen=True)
class Answer:
    """Gemini's text, which model wrote it, why it stopped, and the tokens it cost.

    `finish_reason` is "STOP" for a complete answer and "MAX_TOKENS" for one cut off at the
    output limit (`truncated`); every other reason raises instead. `sources` are the web pages a
    grounded answer cites (`core.gemini.grounding`), checked and bounded; none without grounding.
    """

    text: str
    model: str
    finish_reason: str
    usage: Usage
    sources: tuple[Source, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "MAX_TOKENS"


def _name(value: object) -> str:
    # The SDK gives enums for the reasons it knows and plain strings for newer ones.
    return str(getattr(value, "value", value) or "")


def _turns(prompt: str | Sequence[Turn], images: Sequence[ImageInput]) -> list[Turn]:
    if isinstance(prompt, str):
        if not prompt.strip() and not images:
            raise InvalidInput("the prompt is empty")
        return [Turn("user", prompt.strip(), tuple(images))]
    if images:
        raise InvalidInput("with a conversation, attach images to its turns")
    turns = list(prompt)
    if not turns:
        raise InvalidInput("the conversation is empty")
    for number, turn in enumerate(turns, 1):
        if turn.role not in ("user", "model"):
            raise InvalidInput(f"turn {number} has role {turn.role!r}; use 'user' or 'model'")
        if not turn.text.strip() and not turn.images:
            raise InvalidInput(f"turn {number} is empty")
    if turns[-1].role != "user":
        raise InvalidInput("a conversation must end with the user's turn")
    return turns


def _to_upload(turns: Sequence[Turn], system_instruction: str | None, limit: int) -> set[str]:
    """Hashes of the images to send through the Files API so that the request stays under `limit`.

    The limit is on the whole request, and inline bytes travel as base64 (4/3 of their size), so
    the largest images go out first until the rest fits.
    """
    size = _ENVELOPE + len((system_instruction or "").encode())
    size += sum(len(turn.text.encode()) for turn in turns)
    inline: dict[str, int] = {}  # an image sent twice (two turns) weighs twice
    for turn in turns:
        for image in turn.images:
            inline[image.sha256] = inline.get(image.sha256, 0) + 4 * -(-image.size // 3)
    size += sum(inline.values())
    chosen: set[str] = set()
    for digest, encoded in sorted(inline.items(), key=lambda item: -item[1]):
        if size <= limit:
            break
        chosen.add(digest)
        size -= encoded
    return chosen


def _contents(
    client: GeminiClient, turns: Sequence[Turn], system_instruction: str | None
) -> list[types.Content]:
    upload = _to_upload(turns, system_instruction, client.settings.inline_image_limit)
    contents = []
    for turn in turns:
        parts: list[types.Part] = []
        # Images before the text: Gemini answers a question about an image best that way.
        for image in turn.images:
            if image.sha256 in upload:
                parts.append(upload_image(client, image))
            else:
                parts.append(types.Part.from_bytes(data=image.data, mime_type=image.mime_type))
        if turn.text.strip():
            parts.append(types.Part(text=turn.text))
        contents.append(types.Content(role=turn.role, parts=parts))
    return contents


def answer_of(response: types.GenerateContentResponse, model: str) -> Answer:
    """The checked `Answer` in a `generateContent` response (one read back from a batch, say);
    raises PromptBlocked, AnswerStopped or EmptyAnswer as `generate` does."""
    return _answer(response, model)


def _answer(response: types.GenerateContentResponse, model: str) -> Answer:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        reason = _name(feedback.block_reason)
        because = _BLOCKED_BECAUSE.get(reason, "of a policy Gemini did not name")
        extra = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise PromptBlocked(
            f"Gemini refused the prompt because {because} ({reason}{extra}); rephrase it and try again",
            reason=reason,
        )
    if not response.candidates:
        raise BadResponse("Gemini sent no answer and no reason; try again")
    candidate = response.candidates[0]
    reason = _name(candidate.finish_reason) or "STOP"
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought).strip()
    if reason not in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"):
        because = _STOPPED_BECAUSE.get(reason, "of a reason Gemini did not name")
        # A partial answer stopped for safety is not shown: the part that was withheld may be
        # what gives the rest its meaning.
        raise AnswerStopped(f"Gemini stopped its answer because {because} ({reason})", reason=reason)
    if not text:
        if reason == "MAX_TOKENS":
            raise EmptyAnswer(
                "Gemini reached its output limit before writing any answer (MAX_TOKENS); ask for "
                "something shorter or allow more output tokens",
                reason=reason,
            )
        raise EmptyAnswer("Gemini returned an empty answer; try rephrasing the prompt", reason=reason)
    usage = response.usage_metadata
    return Answer(
        text=text,
        model=response.model_version or model,
        finish_reason="MAX_TOKENS" if reason == "MAX_TOKENS" else "STOP",
        usage=Usage(
            prompt=(usage.prompt_token_count or 0) if usage else 0,
            answer=(usage.candidates_token_count or 0) if usage else 0,
            thinking=(usage.thoughts_token_count or 0) if usage else 0,
            total=(usage.total_token_count or 0) if usage else 0,
        ),
        sources=merged(sources_of(response)),
    )


class Options(TypedDict, total=False):
    """What a generation may be told beside its prompt (every key optional): `model` (default
    GEMBOT_GENERATION_MODEL), `system_instruction`, `images` (sent before the prompt),
    `max_output_tokens`, `temperature`, `seed`, `thinking_budget` (0 turns thinking off, -1 lets
    the model decide), `response_schema` (a JSON Schema the answer must follow, as JSON) and
    `grounding` (Gemini may search Google), and `limiter` (a shared request pace)."""

    model: str | None
    system_instruction: str | None
    images: Sequence[ImageInput]
    max_output_tokens: int | None
    temperature: float | None
    seed: int | None
    thinking_budget: int | None
    response_schema: dict[str, Any] | None
    grounding: bool
    #: Pace the request under this limiter (a big job's per-minute quota); a 429 pauses it.
    limiter: RateLimiter | None


def request_config(**options: Unpack[Options]) -> types.GenerateContentConfig:
    """The SDK configuration `options` ask for (everything but the model, the prompt and images)."""
    budget, schema = options.get("thinking_budget"), options.get("response_schema")
    return types.GenerateContentConfig(
        system_instruction=options.get("system_instruction") or None,
        max_output_tokens=options.get("max_output_tokens"),
        temperature=options.get("temperature"),
        seed=options.get("seed"),
        thinking_config=types.ThinkingConfig(thinking_budget=budget) if budget is not None else None,
        response_mime_type="application/json" if schema is not None else None,
        response_json_schema=schema,
        tools=search_tools() if options.get("grounding") else None,
    )


def _request(
    client: GeminiClient, prompt: str | Sequence[Turn], **options: Unpack[Options]
) -> tuple[str, list[types.Content], types.GenerateContentConfig]:
    model, system_instruction = options.get("model"), options.get("system_instruction")
    name = (model or client.settings.generation_model).removeprefix("models/")
    turns = _turns(prompt, options.get("images", ()))
    contents = _contents(client, turns, system_instruction)
    return name, contents, request_config(**options)


def generate(client: GeminiClient, prompt: str | Sequence[Turn], **options: Unpack[Options]) -> Answer:
    """Gemini's answer to a prompt (with `images`, sent before it) or to a conversation of turns.

    `model` defaults to GEMBOT_GENERATION_MODEL. Images over the inline limit are uploaded
    through the Files API first. With `grounding`, Gemini may search Google and the answer's
    `sources` name what it read. Raises PromptBlocked, AnswerStopped or EmptyAnswer when there is
    no answer to show, and the client's errors when the call itself fails.
    """
    name, contents, config = _request(client, prompt, **options)
    sdk = client.sdk
    response = client.call(
        lambda: sdk.models.generate_content(model=name, contents=contents, config=config),
        model=name,
        limiter=options.get("limiter"),
    )
    return _answer(response, name)


class AnswerStream:
    """Gemini's answer as it is written: iterate for its text in pieces (plain strings); once the
    iteration is over, `answer` is the whole `Answer`, checked as `generate` checks it.

    The iteration raises what `generate` raises, at the point where Gemini says it: a blocked
    prompt before any text, an answer stopped for safety after the text it had sent (a caller
    showing the pieces must then take them back), an empty answer at the end.
    """

    def __init__(
        self,
        client: GeminiClient,
        first: types.GenerateContentResponse | None,
        rest: Iterator[Any],
        model: str,
    ) -> None:
        self._client = client
        self._first = first
        self._rest = rest
        self._model = model
        self._answer: Answer | None = None

    @property
    def answer(self) -> Answer:
        """The whole answer; only once the iteration has ended."""
        if self._answer is None:
            raise RuntimeError("the stream has not been read to its end")
        return self._answer

    def __iter__(self) -> Iterator[str]:
        pieces: list[str] = []
        sources: list[Source] = []  # from whichever chunks carry grounding metadata
        last: types.GenerateContentResponse | None = None
        response = self._first
        while response is not None:
            last = response
            _check_prompt(response)
            sources += sources_of(response)
            text = _text_of(response)
            if text:
                pieces.append(text)
                yield text
            reason = _finish_reason(response)
            if reason and reason not in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"):
                break  # `_answer` below says why
            # Later pieces are not charged again (one charge per answer), nor retried: what was
            # shown cannot be taken back by asking again.
            response = self._client.call(lambda: next(self._rest, None), model=self._model, continuing=True)
        if last is None:
            raise BadResponse("Gemini sent no answer and no reason; try again")
        whole = last.model_copy(deep=True)
        if whole.candidates:
            whole.candidates[0].content = types.Content(
                role="model", parts=[types.Part(text="".join(pieces))]
            )
        answer = _answer(whole, self._model)
        self._answer = dataclasses.replace(answer, sources=merged(sources))


def _check_prompt(response: types.GenerateContentResponse) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        _answer(response, "")  # raises PromptBlocked with the reason in words


def _text_of(response: types.GenerateContentResponse) -> str:
    if not response.candidates:
        return ""
    content = response.candidates[0].content
    parts = content.parts if content and content.parts else []
    return "".join(p.text for p in parts if p.text and not p.thought)


def _finish_reason(response: types.GenerateContentResponse) -> str:
    return _name(response.candidates[0].finish_reason) if response.candidates else ""


def generate_stream(
    client: GeminiClient, prompt: str | Sequence[Turn], **options: Unpack[Options]
) -> AnswerStream:
    """`generate`, streamed: the request is sent (and charged, once) now, and its first piece read,
    so a refusal, a quota or an unreachable Gemini raises here and is retried as `generate`'s;
    the returned `AnswerStream` yields the text as Gemini writes it. With `grounding`, the sources
    of the chunks that carry grounding metadata end up on its `answer`."""
    name, contents, config = _request(client, prompt, **options)
    sdk = client.sdk
    holder: list[Iterator[Any]] = []

    def start() -> types.GenerateContentResponse | None:
        stream = sdk.models.generate_content_stream(model=name, contents=contents, config=config)
        holder[:] = [stream]
        return next(stream, None)

    first = client.call(start, model=name)
    return AnswerStream(client, first, holder[0], name)
