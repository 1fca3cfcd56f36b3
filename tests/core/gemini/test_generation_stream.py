"""`generate_stream` through the real google-genai SDK against the Gemini stand-in's
`streamGenerateContent` (server-sent events): the pieces, the whole answer, the failures, one charge."""

from __future__ import annotations

import pytest

from core.daily_limits import Actor, Meter, UsageCount, UsageLimits, acting_for, utc_today
from core.gemini.failures import AnswerStopped, GeminiUnavailable, PromptBlocked
from core.gemini.generation import generate_stream
from core.store import Store
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client


def test_the_answer_comes_in_pieces_then_whole(gemini_standin: GeminiStandIn) -> None:
    stream = generate_stream(gemini_client(gemini_standin), "Tell me about the four seasons of the year")
    pieces = list(stream)
    assert len(pieces) == 2 and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == "echo: Tell me about the four seasons of the year"
    answer = stream.answer
    assert answer.text == "echo: Tell me about the four seasons of the year"
    assert (answer.model, answer.finish_reason) == ("gemini-2.5-flash", "STOP")
    assert answer.usage.total > 0
    (sent,) = gemini_standin.requests("generate")
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def test_the_answer_is_not_there_before_the_stream_is_read(gemini_standin: GeminiStandIn) -> None:
    stream = generate_stream(gemini_client(gemini_standin), "hello")
    with pytest.raises(RuntimeError):
        _ = stream.answer


def test_a_cut_off_answer_says_so(gemini_standin: GeminiStandIn) -> None:
    stream = generate_stream(gemini_client(gemini_standin), "one two three four five", max_output_tokens=3)
    assert "".join(stream) == "echo: one two"
    assert stream.answer.truncated


def test_a_blocked_prompt_raises_at_once(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.block_prompt("SAFETY")
    with pytest.raises(PromptBlocked, match="judged unsafe"):
        list(generate_stream(gemini_client(gemini_standin), "something dubious"))


def test_an_answer_stopped_for_safety_raises_after_its_text(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.finish("SAFETY", text="The first half of something")
    stream = generate_stream(gemini_client(gemini_standin), "go on")
    seen: list[str] = []
    with pytest.raises(AnswerStopped, match="judged unsafe"):
        for piece in stream:
            seen.append(piece)
    assert "".join(seen) == "The first half of something"  # the caller must take it back


def test_a_server_error_on_opening_is_retried_then_told(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=503, n=5, on="generate")
    with pytest.raises(GeminiUnavailable):
        generate_stream(gemini_client(gemini_standin, gemini_retries=1, gemini_retry_delay=0.01), "hi")
    assert [r.status for r in gemini_standin.requests("generate")] == [503, 503]


def test_a_streamed_answer_is_charged_once(store: Store, gemini_standin: GeminiStandIn) -> None:
    meter = Meter(store, UsageLimits(user_daily=5))
    with acting_for(meter, Actor("T1", "U1")):
        stream = generate_stream(gemini_client(gemini_standin), "a question with several words in it")
        assert len(list(stream)) == 2
    assert store.usage("T1", "U1", utc_today()) == UsageCount(user=1, team=0)


def test_a_stream_that_reaches_the_limit_is_read_to_its_end(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    meter = Meter(store, UsageLimits(user_daily=1))
    with acting_for(meter, Actor("T1", "U1")):
        stream = generate_stream(gemini_client(gemini_standin), "the last question of the day")
        assert "".join(stream) == "echo: the last question of the day"  # its own charge used the limit up
    assert store.usage("T1", "U1", utc_today()) == UsageCount(user=1, team=0)
