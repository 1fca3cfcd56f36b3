"""Gemini failing while the bot works: 429s, 503s and timeouts, on a question and half-way through a
bulk classification. Retries the settings allow are spent first; past them, the user reads what
happened in place of the "working" message, and the next request is served as usual.

Through the running HTTP app, with the Gemini stand-in injecting the faults.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from core.store import ExampleInput
from tests.support.gemini import GeminiStandIn
from tests.support.slack_fixtures import BotServer, MakeBotServer

CHANNEL = "C0GENERAL"
DM = "D0HUMAN"
_clock = itertools.count(1)


def ask(server: BotServer, question: str) -> str:
    """`/ask question`; returns what the channel shows once the working message is replaced."""
    updates = len(server.slack.calls("chat.update"))
    reply = server.send_command("/ask", question)
    assert reply.status == 200 and reply.elapsed < 3.0
    server.slack.wait_for("chat.update", count=updates + 1, timeout=20)
    server.settle(timeout=20)
    return str(server.slack.messages(CHANNEL)[-1]["text"])


def still_serving(server: BotServer) -> None:
    assert server.get("/healthz") == (200, {"ok": True})
    assert ask(server, "Still there?") == "echo: Still there?"


# -- within the retries: answered ----------------------------------------------------------------


def test_a_503_is_retried_and_answered(make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn) -> None:
    server = make_bot_server(env={"GEMBOT_GEMINI_RETRIES": "1"})
    gemini_standin.fail_next(status=503, on="generate")
    assert ask(server, "Are you there?") == "echo: Are you there?"
    assert [r.status for r in gemini_standin.requests("generate")] == [503, 200]


def test_a_per_minute_429_waits_its_retry_delay_and_answers(
    make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn
) -> None:
    server = make_bot_server(env={"GEMBOT_GEMINI_RETRIES": "1"})
    gemini_standin.fail_next(status=429, retry_delay="0.5s", on="generate")
    assert ask(server, "Are you there?") == "echo: Are you there?"
    refused, answered = gemini_standin.requests("generate")
    assert (refused.status, answered.status) == (429, 200)
    assert answered.timestamp - refused.timestamp >= 0.45


# -- past the retries: a sentence, then business as usual ----------------------------------------


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        pytest.param({"status": 503}, "Gemini is unavailable", id="503"),
        pytest.param(
            {"status": 429, "quota": "per_day"}, "The daily Gemini quota is used up", id="429-per-day"
        ),
        pytest.param(
            {"status": 429, "retry_delay": "0.05s"}, "per-minute quota is exceeded", id="429-per-minute"
        ),
    ],
)
def test_gemini_failing_past_the_retries_is_told_in_place_of_the_answer(
    make_bot_server: MakeBotServer,
    gemini_standin: GeminiStandIn,
    fault: dict[str, str | int],
    sentence: str,
) -> None:
    server = make_bot_server()  # GEMBOT_GEMINI_RETRIES=0
    gemini_standin.fail_next(on="generate", **fault)  # type: ignore[arg-type]
    shown = ask(server, "Are you there?")
    assert shown.startswith(":warning: ") and sentence in shown, shown
    assert len(server.slack.messages(CHANNEL)) == 1  # the working message, replaced
    still_serving(server)


def test_a_gemini_that_does_not_answer_in_time_is_told(
    make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn
) -> None:
    server = make_bot_server(env={"GEMBOT_GEMINI_TIMEOUT": "1"})
    gemini_standin.latency(10, on="generate")
    started = time.monotonic()
    shown = ask(server, "Are you there?")
    assert time.monotonic() - started < 8
    assert shown.startswith(":warning: Gemini did not answer within 1 s"), shown
    gemini_standin.latency(0)
    still_serving(server)


# -- half-way through a job ----------------------------------------------------------------------

EXAMPLES = [
    ExampleInput("billing", "my card was charged twice"),
    ExampleInput("billing", "refund my payment please"),
    ExampleInput("shipping", "my parcel has not arrived"),
    ExampleInput("shipping", "where is my delivery parcel"),
]
ROWS = 250  # three batches of 100, one embedding request each (after one for the examples)


def on_request(gemini: GeminiStandIn, number: int, then: Callable[[], None]) -> threading.Thread:
    """Run `then` as soon as the `number`-th embedding request has arrived (and is being held)."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while len(gemini.requests("embed")) < number and time.monotonic() < deadline:
            time.sleep(0.005)
        then()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        pytest.param("503", "Gemini is unavailable", id="503"),
        pytest.param("429", "The daily Gemini quota is used up", id="429-per-day"),
        pytest.param("timeout", "Gemini did not answer within 1 s", id="timeout"),
    ],
)
def test_gemini_failing_half_way_through_a_csv_classification_is_told(
    make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn, fault: str, sentence: str
) -> None:
    server = make_bot_server(embedder="real", env={"GEMBOT_EMBEDDER": "gemini", "GEMBOT_GEMINI_TIMEOUT": "1"})
    assert server.deps is not None
    server.deps.store.add_examples(server.team, "default", EXAMPLES)
    # Each embedding request is held a little, so the fault is in place before the next one.
    gemini_standin.latency(0.2, on="embed")

    def inject() -> None:
        if fault == "503":
            gemini_standin.fail_next(status=503, on="embed")
        elif fault == "429":
            gemini_standin.fail_next(status=429, quota="per_day", on="embed")
        else:
            gemini_standin.latency(10, on="embed")

    watcher = on_request(gemini_standin, 2, inject)  # the examples, then the first batch
    table = "text\n" + "".join(f"my parcel number {n} is late\n" for n in range(ROWS))
    file = server.slack.add_file(table.encode(), "tickets.csv", "text/csv")
    ts = f"1700002{next(_clock):03d}.000100"
    event = {
        "type": "message",
        "subtype": "file_share",
        "user": "U0HUMAN",
        "text": "classify",
        "ts": ts,
        "event_ts": ts,
        "channel": DM,
        "channel_type": "im",
        "files": [file],
    }
    assert server.send_event(event).status == 200
    watcher.join(timeout=20)
    server.settle(timeout=30)
    embeds = gemini_standin.requests("embed")
    assert len(embeds) == 3, [r.status for r in embeds]  # the failing batch was the last tried
    (progress,) = [m for m in server.slack.messages(DM) if m.get("thread_ts") == ts]
    assert progress["text"].startswith(":warning: ") and sentence in progress["text"], progress["text"]
    assert server.slack.uploads() == []  # no half-annotated table
    gemini_standin.latency(0)
    still_serving(server)
