"""An experiment run through the Batch API, end to end: the real SDK against the Gemini stand-in,
a real store, and a fake clock so that hours of polling take no time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from core.experiments.batch_run import DELIVERED, LONGEST_POLL, run_batches
from core.gemini.generation import Options
from core.gemini.outcomes import Reply
from core.store.repository import Store
from tests.support.experiment_support import result as experiment_result
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client, gemini_settings

FLASH, PRO = "gemini-2.5-flash", "gemini-2.5-pro"
OWNER = "worker-1"
OPTIONS = Options(temperature=0.0)


class Crash(Exception):
    """The process dying at a chosen point."""


@dataclass
class Clock:
    """A clock that moves only when `sleep` is called, and remembers every sleep."""

    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Experiment:
    """An experiment in the store and a `deliver` that records results as the runner will."""

    store: Store
    id: int
    job_id: int
    delivered: list[tuple[str, int, Reply]] = field(default_factory=list)
    crash_after: int | None = None

    def deliver(self, model: str, row: int, reply: Reply) -> None:
        if self.crash_after is not None and len(self.delivered) >= self.crash_after:
            raise Crash
        self.delivered.append((model, row, reply))
        result = experiment_result(
            model=model,
            row_index=row,
            prompt=f"prompt {row}",
            outcome=reply.outcome,
            answer=reply.text,
            reason=reply.reason,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            thinking_tokens=reply.thinking_tokens,
            latency_ms=reply.latency_ms,
            batch=True,
        )
        self.store.experiments.record(self.id, [result], job_id=self.job_id, owner=OWNER, lease_seconds=60)


def experiment(store: Store, rows: int, models: int = 1) -> Experiment:
    record, job = store.experiments.create(
        "T1",
        name="batch experiment",
        spec={"v": 1, "models": [f"model-{n}" for n in range(models)]},
        cases={},
        rows=rows,
        source="cases.csv",
        origin="cli",
        job_kind="experiment",
        job_parameters={},
        owner=OWNER,
        lease_seconds=60,
    )
    assert job is not None
    return Experiment(store, record.id, job.id)


def prompts(*texts: str) -> list[tuple[int, str]]:
    return list(enumerate(texts))


def run(
    store: Store,
    standin: GeminiStandIn,
    exp: Experiment,
    requests: dict[str, list[tuple[int, str]]],
    clock: Clock,
    states: list[tuple[str, str]] | None = None,
    *,
    inline_limit: int = 16 * 1024 * 1024,
    **settings: Any,
) -> None:
    def on_state(model: str, state: str) -> None:
        if states is not None:
            states.append((model, state))

    run_batches(
        store,
        gemini_client(standin),
        gemini_settings(standin, **settings),
        exp.id,
        requests,
        OPTIONS,
        deliver=exp.deliver,
        sleep=clock.sleep,
        clock=clock.time,
        on_state=on_state,
        inline_limit=inline_limit,
    )


def creates(standin: GeminiStandIn) -> int:
    return len(standin.requests("batch", action="batches.create"))


def test_a_batch_is_polled_through_pending_and_running_and_every_row_delivered(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp, clock, states = experiment(store, 4), Clock(), []
    gemini_standin.block_prompt("SAFETY")
    gemini_standin.finish("SAFETY")
    gemini_standin.fail_batch_requests(keys=["row-2"], code=500, message="Internal error encountered.")

    run(
        store,
        gemini_standin,
        exp,
        {FLASH: prompts("blocked", "stopped", "errored", "answered")},
        clock,
        states,
        batch_poll_seconds=30,
    )

    assert [(m, row, r.outcome) for m, row, r in exp.delivered] == [
        (FLASH, 0, "refused"),
        (FLASH, 1, "stopped"),
        (FLASH, 2, "error"),
        (FLASH, 3, "answered"),
    ]
    assert exp.delivered[3][2].text == "echo: answered"
    assert "Internal error encountered." in (exp.delivered[2][2].reason or "")
    assert [s for _, s in states] == ["pending", "running", "succeeded", DELIVERED]
    assert clock.sleeps == [30, 60]  # read pending, then running, then succeeded
    (batch,) = store.experiments.batches(exp.id)
    assert (batch.model, batch.state, batch.rows, batch.error) == (FLASH, DELIVERED, (0, 1, 2, 3), None)
    assert batch.name == gemini_standin.batches()[0].name
    assert [(r.row_index, r.outcome) for r in store.experiments.results(exp.id)] == [
        (0, "refused"),
        (1, "stopped"),
        (2, "error"),
        (3, "answered"),
    ]


def test_each_model_gets_its_own_batch_and_the_polls_back_off_to_a_cap(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp, clock = experiment(store, 2, models=2), Clock()
    gemini_standin.batch_progress(pending_gets=6, running_gets=2)

    run(
        store,
        gemini_standin,
        exp,
        {FLASH: prompts("a", "b"), PRO: prompts("a", "b")},
        clock,
        batch_poll_seconds=100,
    )

    assert sorted((m, row) for m, row, _ in exp.delivered) == [(FLASH, 0), (FLASH, 1), (PRO, 0), (PRO, 1)]
    assert {b.model for b in gemini_standin.batches()} == {FLASH, PRO}
    assert clock.sleeps == [
        100,
        200,
        400,
        LONGEST_POLL,
        LONGEST_POLL,
        LONGEST_POLL,
        LONGEST_POLL,
        LONGEST_POLL,
    ]


@pytest.mark.parametrize(
    ("ending", "words"),
    [
        ("EXPIRED", "expired before Gemini ran it (Batch API jobs expire after 48 hours)"),
        ("FAILED", "failed at Gemini"),
        ("CANCELLED", "was cancelled before Gemini finished it"),
    ],
)
def test_a_batch_that_does_not_succeed_gives_each_row_an_error_naming_why(
    store: Store, gemini_standin: GeminiStandIn, ending: str, words: str
) -> None:
    exp, clock = experiment(store, 2), Clock()
    gemini_standin.end_batches(ending)

    run(store, gemini_standin, exp, {FLASH: prompts("a", "b")}, clock)

    assert [(row, r.outcome) for _, row, r in exp.delivered] == [(0, "error"), (1, "error")]
    for _, _, reply in exp.delivered:
        assert reply.reason is not None and words in reply.reason and "\n" not in reply.reason
    (batch,) = store.experiments.batches(exp.id)
    assert batch.state == DELIVERED and batch.error is not None and words in batch.error


def test_a_batch_stuck_pending_is_cancelled_after_the_limit(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp, clock, states = experiment(store, 1), Clock(), []
    gemini_standin.keep_batches_pending()

    run(
        store,
        gemini_standin,
        exp,
        {FLASH: prompts("a")},
        clock,
        states,
        batch_poll_seconds=600,
        batch_pending_hours=1,
    )

    # Six waits of 600 s make exactly an hour; the poll after the seventh is past it.
    assert clock.sleeps == [600] * 7
    assert gemini_standin.last("batch", action="batches.cancel")
    assert gemini_standin.batches()[0].state == "BATCH_STATE_CANCELLED"
    ((_, _, reply),) = exp.delivered
    assert reply.outcome == "error" and "still pending after 1 hours, so Gembot cancelled it" in (
        reply.reason or ""
    )
    assert [s for _, s in states] == ["pending", "cancelled", DELIVERED]


def test_a_restart_waits_for_the_stored_batch_instead_of_submitting_again(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp = experiment(store, 3)
    requests = {FLASH: prompts("a", "b", "c")}

    def crash_once_submitted(model: str, state: str) -> None:
        raise Crash

    with pytest.raises(Crash):
        run_batches(
            store,
            gemini_client(gemini_standin),
            gemini_settings(gemini_standin),
            exp.id,
            requests,
            OPTIONS,
            deliver=exp.deliver,
            sleep=Clock().sleep,
            clock=Clock().time,
            on_state=crash_once_submitted,
        )
    assert creates(gemini_standin) == 1
    assert [b.state for b in store.experiments.batches(exp.id)] == ["pending"]

    exp.crash_after = 1  # the next process dies after recording one row
    with pytest.raises(Crash):
        run(store, gemini_standin, exp, requests, Clock())
    assert creates(gemini_standin) == 1
    assert [row for _, row, _ in exp.delivered] == [0]

    exp.crash_after = None
    run(store, gemini_standin, exp, requests, Clock())
    assert creates(gemini_standin) == 1
    assert [row for _, row, _ in exp.delivered] == [0, 1, 2]  # row 0 not delivered twice
    assert [b.state for b in store.experiments.batches(exp.id)] == [DELIVERED]

    gemini_standin.clear_requests()
    run(store, gemini_standin, exp, requests, Clock())
    assert gemini_standin.requests() == [] and len(exp.delivered) == 3


def test_rows_that_already_have_a_result_are_not_submitted(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp = experiment(store, 3)
    exp.deliver(FLASH, 1, Reply(outcome="answered", text="from before"))

    run(store, gemini_standin, exp, {FLASH: prompts("a", "b", "c")}, Clock())

    (batch,) = gemini_standin.batches()
    assert [key for key, _ in batch.requests] == ["row-0", "row-2"]
    assert [row for _, row, _ in exp.delivered] == [1, 0, 2]
    assert store.experiments.batches(exp.id)[0].rows == (0, 2)


def test_a_large_experiment_goes_as_a_jsonl_file(store: Store, gemini_standin: GeminiStandIn) -> None:
    exp = experiment(store, 2)

    run(store, gemini_standin, exp, {FLASH: prompts("a", "b")}, Clock(), inline_limit=1)

    assert gemini_standin.batches()[0].from_file
    assert [(row, r.text) for _, row, r in exp.delivered] == [(0, "echo: a"), (1, "echo: b")]


def test_a_poll_that_meets_an_outage_is_tried_again_at_the_next_round(
    store: Store, gemini_standin: GeminiStandIn
) -> None:
    exp, clock = experiment(store, 1), Clock()
    gemini_standin.batch_progress(pending_gets=0, running_gets=0)

    def outage_once_submitted(model: str, state: str) -> None:
        if state == "pending":
            # Every attempt of the first poll (the SDK's own retries included) meets a 503.
            gemini_standin.fail_next(n=3, status=503, on="batch")

    run_batches(
        store,
        gemini_client(gemini_standin),
        gemini_settings(gemini_standin, batch_poll_seconds=5),
        exp.id,
        {FLASH: prompts("a")},
        OPTIONS,
        deliver=exp.deliver,
        sleep=clock.sleep,
        clock=clock.time,
        on_state=outage_once_submitted,
    )

    assert [r.status for r in gemini_standin.requests("batch", action="batches.get")] == [
        503,
        503,
        503,
        200,
        200,
    ]
    assert clock.sleeps == [5]
    assert [(row, r.outcome) for _, row, r in exp.delivered] == [(0, "answered")]
