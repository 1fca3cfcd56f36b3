"""Batch jobs through the real google-genai SDK against the Gemini stand-in: submission inline and
as a JSONL file, states, every kind of result, cancelling, and the daily limits."""

from __future__ import annotations

import json

import pytest

from core.daily_limits import Actor, Meter, UsageCount, UsageLimitReached, UsageLimits, acting_for, utc_today
from core.errors import InvalidInput
from core.gemini import batches
from core.gemini.batches import BatchRequest
from core.gemini.client import GeminiClient
from core.gemini.failures import GeminiError
from core.gemini.generation import Options
from core.gemini.outcomes import Reply
from core.store.repository import Store
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client

FLASH = "gemini-2.5-flash"
OPTIONS = Options(system_instruction="Answer in one word.", temperature=0.0, max_output_tokens=50)


def submit(client: GeminiClient, *prompts: str, inline_limit: int = batches.INLINE_LIMIT) -> str:
    requests = [BatchRequest(f"k{i}", prompt) for i, prompt in enumerate(prompts)]
    return batches.submit(
        client, FLASH, requests, options=OPTIONS, display_name="test batch", inline_limit=inline_limit
    )


def wait(client: GeminiClient, name: str) -> list[str]:
    seen = []
    while not (current := batches.status(client, name)).finished:
        seen.append(current.state)
    return [*seen, current.state]


def test_an_inline_batch_runs_through_pending_and_running_to_its_answers(
    gemini_standin: GeminiStandIn,
) -> None:
    client = gemini_client(gemini_standin)
    name = submit(client, "  first question  ", "second question")

    sent = gemini_standin.last("batch", action="batches.create")
    requests = sent.json["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["metadata"] for r in requests] == [{"key": "k0"}, {"key": "k1"}]
    assert requests[0]["request"]["contents"] == [{"role": "user", "parts": [{"text": "first question"}]}]
    assert requests[0]["request"]["systemInstruction"]["parts"] == [{"text": "Answer in one word."}]
    assert requests[0]["request"]["generationConfig"] == {"temperature": 0.0, "maxOutputTokens": 50}
    assert sent.json["batch"]["displayName"] == "test batch"

    assert wait(client, name) == ["pending", "running", "succeeded"]
    status = batches.status(client, name)
    assert status.name == name and status.error is None
    assert status.created is not None and status.updated is not None and status.updated >= status.created

    replies = batches.results(client, name, FLASH, keys=["k0", "k1"])
    assert replies == {
        # 2 words of prompt and 4 of system instruction in; "echo:" and the 2 words out.
        "k0": Reply(
            outcome="answered", text="echo: first question", reason="STOP", input_tokens=6, output_tokens=3
        ),
        "k1": Reply(
            outcome="answered", text="echo: second question", reason="STOP", input_tokens=6, output_tokens=3
        ),
    }


def test_results_tell_refusals_stops_and_errors_apart(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.batch_progress(pending_gets=0, running_gets=0)
    gemini_standin.block_prompt("SAFETY")
    gemini_standin.finish("SAFETY")
    hostile = 'Bad request\n\n{"raw": "body"}' + " padding" * 100
    gemini_standin.fail_batch_requests(keys=["k2"], code=400, message=hostile)
    name = submit(client, "blocked", "stopped", "errored", "answered")
    assert wait(client, name) == ["succeeded"]

    replies = batches.results(client, name, FLASH, keys=["k0", "k1", "k2", "k3", "never-sent"])

    assert (replies["k0"].outcome, replies["k0"].reason) == ("refused", "SAFETY")
    assert (replies["k1"].outcome, replies["k1"].reason) == ("stopped", "SAFETY")
    error = replies["k2"]
    assert error.outcome == "error" and error.reason is not None
    assert error.reason.startswith("Gemini could not answer this request (400: Bad request {")
    assert "\n" not in error.reason and len(error.reason) < 300
    assert replies["k3"].outcome == "answered" and replies["k3"].latency_ms == 0
    assert replies["never-sent"].outcome == "error" and "no result" in (replies["never-sent"].reason or "")


def test_a_batch_too_big_to_send_inline_goes_as_a_jsonl_file(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.fail_batch_requests(keys=["k1"], code=500, message="Internal error encountered.")
    inline_name = submit(client, "same question", "another")
    name = submit(client, "same question", "another", inline_limit=1)

    created = gemini_standin.last("batch", action="batches.create").json["batch"]["inputConfig"]
    uploaded = gemini_standin.file(created["fileName"])
    assert uploaded.mime_type == batches.JSONL_MIME_TYPE
    lines = [json.loads(line) for line in uploaded.data.decode().splitlines()]
    assert [line["key"] for line in lines] == ["k0", "k1"]
    # The file carries the very requests the SDK sends inline.
    assert [request for _, request in gemini_standin.batch(name).requests] == [
        request for _, request in gemini_standin.batch(inline_name).requests
    ]

    wait(client, inline_name), wait(client, name)
    from_file = batches.results(client, name, FLASH, keys=["k0", "k1"])
    assert from_file == batches.results(client, inline_name, FLASH, keys=["k0", "k1"])
    assert from_file["k0"].text == "echo: same question"
    assert from_file["k1"].outcome == "error" and "500: Internal error encountered." in (
        from_file["k1"].reason or ""
    )
    assert gemini_standin.last("files").action == "files.download"


def test_inline_results_without_their_keys_are_placed_by_input_order(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.omit_batch_keys()
    name = submit(client, "first", "second")
    wait(client, name)

    replies = batches.results(client, name, FLASH, keys=["k0", "k1"])

    assert {key: reply.text for key, reply in replies.items()} == {"k0": "echo: first", "k1": "echo: second"}
    assert batches.results(client, name, FLASH) == {}  # without the keys there is nothing to place them by


@pytest.mark.parametrize("ending", ["failed", "expired", "cancelled"])
def test_a_batch_that_ends_otherwise_says_so_and_has_no_results(
    gemini_standin: GeminiStandIn, ending: str
) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.end_batches(ending.upper())
    name = submit(client, "question")

    assert wait(client, name) == ["pending", "running", ending]
    with pytest.raises(GeminiError, match=f"has not succeeded \\(it is {ending}\\)"):
        batches.results(client, name, FLASH, keys=["k0"])


def test_cancel_ends_a_pending_batch(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.keep_batches_pending()
    name = submit(client, "question")
    assert [batches.status(client, name).state for _ in range(3)] == ["pending"] * 3

    batches.cancel(client, name)
    assert batches.status(client, name).state == "cancelled"


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([], "at least one request"),
        ([BatchRequest("a", "x"), BatchRequest("a", "y")], "used twice"),
        ([BatchRequest("a", "   ")], "is empty"),
        ([BatchRequest(" ", "x")], "needs a key"),
    ],
)
def test_a_malformed_batch_is_refused_before_anything_is_sent(
    gemini_standin: GeminiStandIn, requests: list[BatchRequest], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        batches.submit(gemini_client(gemini_standin), FLASH, requests, options=OPTIONS, display_name="x")
    assert gemini_standin.requests() == []


def test_each_request_of_a_batch_is_charged_and_reads_are_free(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    client = gemini_client(gemini_standin)
    meter = Meter(store, UsageLimits(user_daily=3))
    with acting_for(meter, Actor("T1", "U1")):
        name = submit(client, "one", "two", "three")  # uses the day's limit up
        assert store.usage("T1", "U1", utc_today()) == UsageCount(user=3, team=0)
        # Polling and reading the batch serve requests already paid for: not refused.
        wait(client, name)
        assert batches.results(client, name, FLASH, keys=["k0"])["k0"].outcome == "answered"
        with pytest.raises(UsageLimitReached):
            submit(client, "four")
    assert len(gemini_standin.batches()) == 1
    assert store.usage("T1", "U1", utc_today()) == UsageCount(user=3, team=0)
