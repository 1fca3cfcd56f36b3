"""What one generation request gave back (an experiment's row, a batch's request), as a plain value
that can be stored and cached.

Four outcomes, counted apart in every summary and never scored as wrong answers but the first:
`answered` (text, possibly cut off at the output limit), `refused` (Gemini blocked the prompt),
`stopped` (the answer was stopped for safety, recitation, or came back empty) and `error` (the
request failed: a quota, an outage, a rejected request). Errors are never cached: asking again
may succeed; the other three are Gemini's answer to the request and are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from core.errors import GembotError
from core.gemini.failures import AnswerStopped, PromptBlocked
from core.gemini.generation import Answer

Outcome = Literal["answered", "refused", "stopped", "error"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


@dataclass(frozen=True)
class Reply:
    """One request's result. `reason` is the finish reason of an answer (STOP, MAX_TOKENS), the
    block or stop reason of a refusal, or the sentence of an error. `output_tokens` includes the
    thinking tokens (both are billed as output); `latency_ms` is the time the request took."""

    outcome: Outcome
    text: str = ""
    reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    latency_ms: float = 0.0

    @property
    def cacheable(self) -> bool:
        return self.outcome != "error"


def reply_of_answer(answer: Answer, *, latency_ms: float) -> Reply:
    """An `Answer` as an answered `Reply`."""
    return Reply(
        outcome="answered",
        text=answer.text,
        reason=answer.finish_reason,
        input_tokens=answer.usage.prompt,
        output_tokens=answer.usage.answer + answer.usage.thinking,
        thinking_tokens=answer.usage.thinking,
        latency_ms=latency_ms,
    )


def reply_of_failure(exc: GembotError, *, latency_ms: float) -> Reply:
    """A failed request as a `Reply`: refused, stopped, or an error with its sentence."""
    if isinstance(exc, PromptBlocked):
        return Reply(outcome="refused", reason=exc.reason, latency_ms=latency_ms)
    if isinstance(exc, AnswerStopped):
        return Reply(outcome="stopped", reason=exc.reason, latency_ms=latency_ms)
    return Reply(outcome="error", reason=str(exc)[:500], latency_ms=latency_ms)
