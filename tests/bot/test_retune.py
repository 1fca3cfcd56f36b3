"""`bot.background.Retuner` (its tunes: `bot.retune`): the background re-tune of a serving process,
on both databases.

The scheduling is what these tests are about, so the engine is a small stand-in of our own
(`FakeTuner`, answering like `Engine.tune`); the store, the leases and the Slack stand-in the DMs
go through are real. `tests/handlers/commands/test_label_tune.py` runs a real tune from `/label tune`
to the DM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from bot.background import Retuner
from bot.lifecycle import Lifecycle
from bot.retune import Abandoned, Progress, TuneJobs
from core.engine import TuneOutcome
from core.errors import GembotError, NotEnoughLabels, NotFound
from core.settings import Settings
from core.store import ExampleInput, Store, TunedEncoderInput
from core.store.schema import TuneJobRow
from core.tuning.holdout import Verdict
from handlers.deps import Deps
from tests.support.slack_standin import SlackStandIn

NO_DOTENV = Path("/nonexistent/.env")
TEAM = "T0STANDIN"
ASKER = "U0HUMAN"
DM = "D0HUMAN"  # ASKER's DM with the bot, as the stand-in's conversations.open names it
BILLING = ["I was charged twice", "refund my card", "a wrong charge on my invoice"]
SHIPPING = ["where is my parcel", "the delivery is late", "the courier lost my package"]

BETTER = Verdict(tuned_accuracy=0.912, plain_accuracy=0.88, held_out=40)


class FakeTuner:
    """Answers like `Engine.tune`: `verdict` and `kept`, or raises `fail`; with `gate`, it runs
    (calling `progress` like a training loop) until the gate opens."""

    def __init__(
        self,
        *,
        verdict: Verdict = BETTER,
        kept: bool = True,
        fail: Callable[[], BaseException] | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.verdict, self.kept, self.fail, self.gate = verdict, kept, fail, gate
        self.calls: list[tuple[str, str, str | None]] = []
        self.started = threading.Event()
        self.ended: BaseException | str | None = None

    def tune(
        self,
        team_id: str,
        set_name: str,
        *,
        kind: str | None = None,
        progress: Progress | None = None,
        seed: int = 0,
    ) -> TuneOutcome:
        self.calls.append((team_id, set_name, kind))
        self.started.set()
        try:
            step = 0
            while self.gate is not None and not self.gate.wait(0.02):
                step += 1
                if progress is not None:
                    progress(step, 10_000)
            if self.fail is not None:
                raise self.fail()
        except BaseException as exc:
            self.ended = exc
            raise
        self.ended = "done"
        return TuneOutcome(
            set_name=set_name,
            set_version=1,
            kind=kind or "adapter",
            examples=6,
            seconds=0.1,
            details={},
            kept=self.kept,
            verdict=self.verdict,
        )


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Opened after the test whatever happens, so no fake tune outlives it."""
    opened = threading.Event()
    yield opened
    opened.set()


def deps_for(store: Store, **env: str) -> Deps:
    settings = Settings.from_env(
        {"DATABASE_URL": "sqlite://", "GEMBOT_EMBEDDER": "local", "GEMBOT_RETUNE_SETTLE": "0", **env},
        dotenv=NO_DOTENV,
    )
    return Deps(settings=settings, store=store, gemini=None)


def retuner(
    deps: Deps, slack: SlackStandIn, tuner: FakeTuner, *, interval: float | None = None, **options: float
) -> Retuner:
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    return Retuner(TuneJobs(deps, client_for=lambda key: client, tuner=tuner, **options), interval=interval)


def seed(store: Store, set_name: str = "billing", *, asked_by: str | None = ASKER) -> None:
    items = [ExampleInput("billing", t) for t in BILLING] + [ExampleInput("shipping", t) for t in SHIPPING]
    store.add_examples(TEAM, set_name, items)
    if asked_by is not None:
        store.request_tune(TEAM, set_name, requested_by=asked_by)


def backdate(store: Store, **ago: timedelta) -> None:
    """Move the job's timestamps (`requested_at=`, `not_before=`) that long into the past."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(update(TuneJobRow).values({name: now - span for name, span in ago.items()}))


def dm_texts(slack: SlackStandIn) -> list[str]:
    return [str(m.get("text")) for m in slack.messages(DM)]


def wait_until(done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- one round ----------------------------------------------------------------------------------


def test_a_round_tunes_a_due_job_finishes_it_and_tells_the_requester(
    store: Store, slack: SlackStandIn
) -> None:
    seed(store)
    tuner = FakeTuner()
    sweeper = retuner(deps_for(store), slack, tuner)
    assert sweeper.round() == 1
    assert tuner.calls == [(TEAM, "billing", None)]
    assert store.tune_jobs(TEAM) == []
    (opened,) = slack.calls("conversations.open")
    assert opened.params["users"] == ASKER
    assert dm_texts(slack) == [
        ":white_check_mark: Tuned set *billing*: 91.2% vs 88.0% plain on 40 held-out examples — "
        "`/classify` uses it now."
    ]
    assert sweeper.round() == 0  # nothing left to do
    assert len(tuner.calls) == 1


def test_a_tune_no_better_than_the_plain_model_says_so(store: Store, slack: SlackStandIn) -> None:
    seed(store)
    tuner = FakeTuner(verdict=Verdict(tuned_accuracy=0.8, plain_accuracy=0.85, held_out=20), kept=False)
    assert retuner(deps_for(store), slack, tuner).round() == 1
    assert dm_texts(slack) == [
        "Tuned set *billing*: no better than the plain model (80.0% vs 85.0% plain on 20 held-out "
        "examples), so `/classify` stays with it."
    ]


def test_a_job_waits_until_the_edits_have_settled(store: Store, slack: SlackStandIn) -> None:
    seed(store)
    tuner = FakeTuner()
    assert retuner(deps_for(store, GEMBOT_RETUNE_SETTLE="600"), slack, tuner).round() == 0
    assert tuner.calls == []
    (job,) = store.tune_jobs(TEAM)
    assert job.owner is None and job.attempts == 0


def test_with_retune_off_nothing_is_claimed(store: Store, slack: SlackStandIn) -> None:
    seed(store)
    tuner = FakeTuner()
    assert retuner(deps_for(store, GEMBOT_RETUNE="0"), slack, tuner).round() == 0
    assert tuner.calls == []
    assert [j.owner for j in store.tune_jobs(TEAM)] == [None]


def test_a_re_tune_that_edits_asked_for_tells_nobody_and_keeps_the_kind(
    store: Store, slack: SlackStandIn
) -> None:
    seed(store, asked_by=None)
    version = store.get_set(TEAM, "billing").version
    encoder = TunedEncoderInput(
        team_id=TEAM,
        set_name="billing",
        set_version=version,
        base="fake",
        kind="adapter",
        format=1,
        examples=6,
        seconds=1.0,
    )
    assert store.save_tuned_encoder(encoder, b"weights")
    assert store.tune_jobs(TEAM) == []
    store.add_examples(TEAM, "billing", [ExampleInput("billing", "charged for nothing")])  # an edit
    (job,) = store.tune_jobs(TEAM)
    assert job.requested_by is None
    tuner = FakeTuner()
    assert retuner(deps_for(store), slack, tuner).round() == 1
    assert tuner.calls == [(TEAM, "billing", "adapter")]
    assert store.tune_jobs(TEAM) == []
    assert slack.calls() == []


# -- failures -----------------------------------------------------------------------------------


def test_a_failing_tune_is_tried_again_then_given_up(store: Store, slack: SlackStandIn) -> None:
    seed(store)
    tuner = FakeTuner(fail=lambda: GembotError("the embedder is away"))
    sweeper = retuner(deps_for(store), slack, tuner)
    for attempt in (1, 2):
        assert sweeper.round() == 1
        (job,) = store.tune_jobs(TEAM)
        assert job.attempts == attempt and job.owner is None
        assert job.last_error == "GembotError: the embedder is away"
        assert slack.calls() == []
    assert sweeper.round() == 1
    assert store.tune_jobs(TEAM) == []
    assert len(tuner.calls) == 3
    assert dm_texts(slack) == [
        ":warning: I gave up tuning set *billing* after 3 attempts: The embedder is away. "
        "`/classify` keeps using what it used before; `/label tune` tries again."
    ]
    assert sweeper.round() == 0


def test_a_failed_tune_waits_the_settle_time_before_it_is_tried_again(
    store: Store, slack: SlackStandIn
) -> None:
    seed(store)
    backdate(store, requested_at=timedelta(minutes=5))  # settled long ago
    tuner = FakeTuner(fail=lambda: RuntimeError("a bug in the tuner"))
    sweeper = retuner(deps_for(store, GEMBOT_RETUNE_SETTLE="60"), slack, tuner)
    before = datetime.now(UTC)
    assert sweeper.round() == 1
    (job,) = store.tune_jobs(TEAM)
    assert job.last_error == "RuntimeError: a bug in the tuner" and job.owner is None
    assert job.not_before is not None
    assert before + timedelta(seconds=59) < job.not_before < datetime.now(UTC) + timedelta(seconds=61)
    assert sweeper.round() == 0  # held back, though its edits have long settled
    backdate(store, not_before=timedelta(seconds=1))
    assert sweeper.round() == 1
    assert len(tuner.calls) == 2


def test_a_job_whose_holders_died_is_given_up_untried(store: Store, slack: SlackStandIn) -> None:
    seed(store)
    for _ in range(3):  # three processes took it and died mid-tune: their leases lapsed
        assert store.claim_tune(owner="dead-process", settle_seconds=0, lease_seconds=0) is not None
        time.sleep(0.01)
    tuner = FakeTuner()
    assert retuner(deps_for(store), slack, tuner).round() == 1
    assert tuner.calls == []
    assert store.tune_jobs(TEAM) == []
    assert dm_texts(slack) == [
        ":warning: I gave up tuning set *billing* after 3 attempts: The tunes kept stopping before "
        "they finished. `/classify` keeps using what it used before; `/label tune` tries again."
    ]


def test_a_set_removed_meanwhile_is_dropped_quietly(store: Store, slack: SlackStandIn) -> None:
    seed(store)

    def removed() -> BaseException:
        store.remove_set(TEAM, "billing", actor="U0OTHER")
        return NotFound("no label set 'billing' in this workspace")

    tuner = FakeTuner(fail=removed)
    assert retuner(deps_for(store), slack, tuner).round() == 1
    assert store.tune_jobs(TEAM) == []
    assert slack.calls() == []


def test_a_set_that_cannot_be_tuned_is_dropped_and_the_requester_told(
    store: Store, slack: SlackStandIn
) -> None:
    seed(store)
    tuner = FakeTuner(fail=lambda: NotEnoughLabels("label set 'billing' needs at least two labels"))
    sweeper = retuner(deps_for(store), slack, tuner)
    assert sweeper.round() == 1
    assert store.tune_jobs(TEAM) == []
    assert dm_texts(slack) == [
        ":warning: I could not tune set *billing*: Label set 'billing' needs at least two labels."
    ]
    assert sweeper.round() == 0 and len(tuner.calls) == 1


# -- leases and threads --------------------------------------------------------------------------


def test_the_heartbeat_holds_the_lease_while_a_long_tune_runs(
    store: Store, slack: SlackStandIn, gate: threading.Event
) -> None:
    seed(store)
    tuner = FakeTuner(gate=gate)
    sweeper = retuner(deps_for(store), slack, tuner, lease_seconds=1.0, renew_every=0.2)
    rounds: list[int] = []
    running = threading.Thread(target=lambda: rounds.append(sweeper.round()))
    running.start()
    assert tuner.started.wait(10)
    time.sleep(2.5)  # well past the first lease
    assert store.claim_tune(owner="rival", settle_seconds=0, lease_seconds=60) is None
    (job,) = store.tune_jobs(TEAM)
    assert job.owner == sweeper.owner and job.attempts == 1
    gate.set()
    running.join(10)
    assert rounds == [1]
    assert store.tune_jobs(TEAM) == []
    assert len(dm_texts(slack)) == 1


def test_a_lost_lease_leaves_the_job_to_its_new_holder(
    store: Store, slack: SlackStandIn, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    seed(store)
    tuner = FakeTuner(gate=gate)
    # A heartbeat slower than the lease: it comes too late.
    sweeper = retuner(deps_for(store), slack, tuner, lease_seconds=0.3, renew_every=3.0)
    running = threading.Thread(target=sweeper.round)
    with caplog.at_level(logging.WARNING, logger="bot.retune"):
        running.start()
        assert tuner.started.wait(10)
        time.sleep(0.6)
        rival = store.claim_tune(owner="rival", settle_seconds=0, lease_seconds=60)
        assert rival is not None and rival.attempts == 2
        wait_until(lambda: "lost the lease" in caplog.text)
        gate.set()
        running.join(10)
    assert tuner.ended == "done"
    (job,) = store.tune_jobs(TEAM)
    assert job.owner == "rival"
    assert slack.calls() == []


def test_one_tune_at_a_time_per_process(store: Store, slack: SlackStandIn, gate: threading.Event) -> None:
    seed(store, "billing")
    seed(store, "shipping")
    deps = deps_for(store)
    first, second = FakeTuner(gate=gate), FakeTuner()
    running = threading.Thread(target=retuner(deps, slack, first).round)
    running.start()
    assert first.started.wait(10)
    other = retuner(deps, slack, second)
    assert other.round() == 0  # the process is busy: the other set waits
    assert second.calls == []
    gate.set()
    running.join(10)
    assert other.round() == 1
    assert [c[1] for c in first.calls + second.calls] == ["billing", "shipping"]
    assert store.tune_jobs(TEAM) == []


def test_a_stop_abandons_a_running_tune_without_waiting_for_it(
    store: Store, slack: SlackStandIn, gate: threading.Event
) -> None:
    seed(store)
    deps = deps_for(store)
    tuner = FakeTuner(gate=gate)
    sweeper = retuner(deps, slack, tuner, interval=0.05)
    lifecycle = Lifecycle(deps, client_for=lambda job: None, retuner=sweeper)
    lifecycle.start()
    assert tuner.started.wait(10)
    begun = time.monotonic()
    assert lifecycle.shutdown(timeout=5)
    assert time.monotonic() - begun < 2.0
    assert not any(t.name == "gembot-retuner" for t in threading.enumerate())
    # The tune stops at its next step; the job stays held until its lease lapses, unfinished.
    wait_until(lambda: tuner.ended is not None)
    assert isinstance(tuner.ended, Abandoned)
    (job,) = store.tune_jobs(TEAM)
    assert job.owner == deps.jobs.owner and job.attempts == 1
    assert slack.calls() == []
