"""Pruning (`bot.background.Housekeeping`): daily usage counters older than a week, expired OAuth
install states, conversation turns (and their images) past their retention, old finished jobs and old
request claims are deleted by one background round of each serving process, never on a request's
thread; a failure is one log line a part. On SQLite and PostgreSQL; once through the running app.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.background import (
    JOB_RETENTION,
    USAGE_RETENTION,
    Housekeeping,
    Pruned,
    Retention,
    prune_oauth_states,
)
from bot.lifecycle import Lifecycle
from core.daily_limits import UsageCount
from core.errors import DatabaseUnavailable, InvalidInput
from core.settings import Settings
from core.store import CachedReply, ExampleInput, Store
from core.store import changes as store_changes
from core.store import conversations as store_conversations
from core.store import db as store_db
from core.store import labels as store_labels
from core.store import usage as store_usage
from core.store.db import make_engine
from core.store.schema import ConversationTurn, TurnImage, UsageCounter, slack_oauth_states
from handlers.deps import Deps
from tests.support.slack_fixtures import MakeBotServer

NO_DOTENV = Path("/nonexistent/.env")
NOTHING = Pruned(usage_counters=0, oauth_states=0, conversation_turns=0, jobs=0, requests=0, answers=0)


def count_days(store: Store, team: str, user: str | None, *days: date) -> list[UsageCount]:
    for day in days:
        assert store.consume_usage(team, user, day, user_limit=10, team_limit=100) is None
    return [store.usage(team, user, day) for day in days]


def counter_days(store: Store) -> list[date]:
    with store.engine.connect() as conn:
        return sorted(set(conn.scalars(select(UsageCounter.day)).all()))


def oauth_state_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(slack_oauth_states)) or 0)


def row_counts(store: Store) -> tuple[int, int]:
    """(conversation turns, turn images) in the database, whatever the thread."""
    with store.engine.connect() as conn:
        turns = conn.scalar(select(func.count()).select_from(ConversationTurn))
        images = conn.scalar(select(func.count()).select_from(TurnImage))
    return int(turns or 0), int(images or 0)


def backdate(store: Store, turn_id: int, age: timedelta) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(ConversationTurn)
            .where(ConversationTurn.id == turn_id)
            .values(created_at=datetime.now(UTC) - age)
        )


# -- usage counters ------------------------------------------------------------------------------------


def test_counters_older_than_a_week_are_pruned(store: Store) -> None:
    assert timedelta(days=7) == USAGE_RETENTION
    today = datetime.now(UTC).date()
    week = [today - timedelta(days=n) for n in range(7)]  # today and the six days before
    old = [today - timedelta(days=7), today - timedelta(days=30)]
    count_days(store, "T1", "U1", *week, *old)
    count_days(store, "T2", None, old[0])
    pruned = Housekeeping(store).run()
    # Each day of T1 has a row for U1 and one for the workspace; T2's day only the workspace's.
    assert pruned == Pruned(usage_counters=5)
    assert pruned.total == 5
    assert counter_days(store) == sorted(week)
    assert store.usage("T1", "U1", today) == UsageCount(user=1, team=1)
    assert store.usage("T1", "U1", week[-1]) == UsageCount(user=1, team=1)
    assert store.usage("T1", "U1", old[0]) == UsageCount(user=0, team=0)
    # Today's counter still counts on from where it was.
    assert store.consume_usage("T1", "U1", today, user_limit=2, team_limit=None) is None
    assert store.consume_usage("T1", "U1", today, user_limit=2, team_limit=None) == "user"
    assert Housekeeping(store).run() == NOTHING


def test_prune_usage_deletes_the_days_before_the_one_given(store: Store) -> None:
    count_days(store, "T1", "U1", date(2025, 3, 13), date(2025, 3, 14))
    assert store.prune_usage(date(2025, 3, 13)) == 0
    assert store.prune_usage(date(2025, 3, 14)) == 2
    assert counter_days(store) == [date(2025, 3, 14)]


# -- reads run again after a lost connection, writes never ------------------------------------------------


def _lost_once(real: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    """`real`, but its first call fails as a query does on a connection the server dropped."""

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError(
                "SELECT 1",
                {},
                Exception("server closed the connection unexpectedly"),
                connection_invalidated=True,
            )
        return real(*args, **kwargs)

    return flaky


def test_the_usage_and_change_log_reads_run_once_more_after_a_lost_connection(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = store.add_examples("T1", "support", [ExampleInput("bug", "It crashes")], actor="U1")
    count_days(store, "T1", "U1", date(2025, 3, 14))
    (example,) = store.list_examples("T1", "support")
    reads: list[tuple[str, Any, Callable[[], Any], Any]] = [
        (
            "count",
            store_usage,
            lambda: store.usage("T1", "U1", date(2025, 3, 14)),
            UsageCount(user=1, team=1),
        ),
        ("latest", store_changes, lambda: [c.action for c in store.label_history("T1")], ["add"]),
        ("added_by", store_labels, lambda: store.example_added_by("T1", example.id), "U1"),
    ]
    assert added.added == 1
    for name, module, read, expected in reads:
        calls: list[int] = []
        monkeypatch.setattr(module, name, _lost_once(getattr(module, name), calls))
        assert read() == expected, name
        assert len(calls) == 2, name  # the lost attempt, then the one that answered


def test_pruning_is_a_write_and_never_replayed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    count_days(store, "T1", "U1", date(2025, 3, 13))
    calls: list[int] = []
    monkeypatch.setattr(store_usage, "prune", _lost_once(store_usage.prune, calls))
    with pytest.raises(DatabaseUnavailable) as lost:
        store.prune_usage(date(2025, 3, 14))
    assert store_db.disconnected(lost.value) and len(calls) == 1
    assert store.prune_usage(date(2025, 3, 14)) == 2  # the next round does it


# -- OAuth install states --------------------------------------------------------------------------


def test_expired_oauth_states_are_deleted_and_live_ones_still_work(store: Store) -> None:
    # slack_sdk's own state store on the store's engine, as `bot.oauth` sets it up.
    live = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=store.engine)
    lapsed = SQLAlchemyOAuthStateStore(expiration_seconds=-60, engine=store.engine)
    fresh = live.issue()
    stale = [lapsed.issue() for _ in range(3)]
    assert oauth_state_count(store) == 4
    assert Housekeeping(store).run() == Pruned(oauth_states=3)
    assert oauth_state_count(store) == 1
    assert not live.consume(stale[0])
    assert live.consume(fresh)  # the install in progress can finish
    assert oauth_state_count(store) == 0


def test_prune_oauth_states_goes_by_the_time_given(store: Store) -> None:
    SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=store.engine).issue()
    now = datetime.now(UTC)
    assert prune_oauth_states(store.engine, now=now) == 0
    assert prune_oauth_states(store.engine, now=now + timedelta(minutes=11)) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        prune_oauth_states(store.engine, now=datetime.now())  # naive: the mistake tested


# -- conversations ---------------------------------------------------------------------------------


def test_turns_past_their_retention_go_with_their_images(store: Store) -> None:
    old = store.add_turn(
        "T1", "C1", "1.1", "user", "look", images=[("image/png", b"a" * 10), ("image/png", b"b")]
    )
    old_answer = store.add_turn("T1", "C1", "1.1", "model", "a cat")
    recent = store.add_turn("T1", "C1", "1.1", "user", "and now?", images=[("image/png", b"c")])
    elsewhere = store.add_turn("T2", "D1", "2.2", "user", "hi", images=[("image/jpeg", b"d")])
    backdate(store, old, timedelta(days=31))
    backdate(store, old_answer, timedelta(days=30, minutes=1))
    backdate(store, elsewhere, timedelta(days=29))
    assert row_counts(store) == (4, 4)

    assert Housekeeping(store, retention=Retention(conversations=timedelta(days=30))).run() == Pruned(
        conversation_turns=2
    )
    assert row_counts(store) == (2, 2)
    (left,) = store.conversation("T1", "C1", "1.1")
    assert (left.id, left.text, [i.data for i in left.images]) == (recent, "and now?", [b"c"])
    assert [t.id for t in store.conversation("T2", "D1", "2.2")] == [elsewhere]
    assert Housekeeping(store).run() == NOTHING


def test_prune_conversations_goes_by_the_time_given(store: Store) -> None:
    store.add_turn("T1", "C1", "1.1", "user", "hi", images=[("image/png", b"a")])
    now = datetime.now(UTC)
    assert store.prune_conversations(now - timedelta(minutes=1)) == 0
    assert store.prune_conversations(now + timedelta(seconds=1)) == 1
    assert row_counts(store) == (0, 0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        store.prune_conversations(datetime.now())  # naive


@pytest.mark.parametrize("backend", ["sqlite"])  # only SQLite has foreign keys to switch off per connection
def test_the_images_go_even_where_the_foreign_key_would_not_cascade(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        turn = store.add_turn(
            "T1", "C1", "1.1", "user", "look", images=[("image/png", b"a"), ("image/png", b"b")]
        )
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # as on a connection nobody set it on
            with Session(conn) as s:
                assert store_conversations.prune(s, datetime.now(UTC) + timedelta(seconds=1)) == 1
            conn.commit()
        assert row_counts(store) == (0, 0), f"turn #{turn}'s images were left behind"
    finally:
        store.close()


# -- jobs and requests, and all of it in one round ------------------------------------------------------


def test_one_round_prunes_every_kind_of_old_row(store: Store) -> None:
    today = datetime.now(UTC).date()
    count_days(store, "T1", "U1", today)
    SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=store.engine).issue()
    store.add_turn("T1", "C1", "1.1", "user", "hi", images=[("image/png", b"a")])
    answer = store.record_answer("T1", "C1", message_ts="1.2", model="gemini-2.5-flash")
    store.rate_answer("T1", answer, "U1", good=True)
    job = store.jobs.create("T1", kind="k", input=b"x", rows_total=1, parameters={}, owner="a")
    assert store.jobs.fail(job.id, error="gone", owner="a")
    store.jobs.create("T1", kind="k", input=b"x", rows_total=1, parameters={})  # waiting: kept
    store.deliveries.claim("Ev1", team_id="T1", payload={"event_id": "Ev1"}, lease=timedelta(seconds=30))
    store.experiments.cache([CachedReply("k" * 64, "m", "answered", "hi", "STOP", 1, 1, 0, 5.0)])
    waiting, _ = store.experiments.create(
        "T1", name="tone", spec={"v": 1, "models": ["m"]}, cases={"columns": [], "rows": []}, rows=1,
        source="c.csv", origin="slack", job_kind="experiment_slack", job_parameters={}, owner=None,
        lease_seconds=60, pending=True,
    )  # fmt: skip
    keeper = Housekeeping(store, retention=Retention(conversations=timedelta(days=30)))
    assert timedelta(days=7) == JOB_RETENTION
    assert keeper.run() == NOTHING

    # A day on: the install state has expired, and the request claim is past
    # GEMBOT_EVENT_RETENTION_HOURS's default (24 hours).
    day = keeper.run(now=datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert day == Pruned(oauth_states=1, requests=1)
    # Eight days on: the failed job and today's counters (a user's and the workspace's) too, and the
    # experiment nobody confirmed is cancelled.
    eight = keeper.run(now=datetime.now(UTC) + timedelta(days=8))
    assert eight == Pruned(usage_counters=2, jobs=1, unconfirmed_experiments=1)
    assert store.experiments.get(waiting.id).state == "cancelled"
    assert [j.state for j in store.jobs.find()] == ["queued"]
    # A month on: the conversation.
    assert keeper.run(now=datetime.now(UTC) + timedelta(days=31)) == Pruned(conversation_turns=1, answers=1)
    assert row_counts(store) == (0, 0)
    # Ninety days on: the cached experiment reply; kept for ever when the setting says 0.
    never = Housekeeping(store, retention=Retention(generation_cache=None))
    assert never.run(now=datetime.now(UTC) + timedelta(days=91)).cached_replies == 0
    assert keeper.run(now=datetime.now(UTC) + timedelta(days=91)) == Pruned(cached_replies=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        keeper.run(now=datetime.now())


def test_the_retention_comes_from_the_settings() -> None:
    settings = Settings.from_env(
        {"GEMBOT_CONVERSATION_RETENTION_DAYS": "2.5", "GEMBOT_EVENT_RETENTION_HOURS": "6"}, dotenv=NO_DOTENV
    )
    assert Retention.of(settings) == Retention(
        conversations=timedelta(days=2.5),
        requests=timedelta(hours=6),
        jobs=JOB_RETENTION,
        generation_cache=timedelta(days=90),
    )
    forever = Settings.from_env({"GEMBOT_GENERATION_CACHE_DAYS": "0"}, dotenv=NO_DOTENV)
    assert Retention.of(forever).generation_cache is None
    assert Retention() == Retention.of(Settings.from_env({}, dotenv=NO_DOTENV))


# -- when, and what a failure does ------------------------------------------------------------------


def test_a_round_at_once_then_one_every_interval_until_stopped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: list[float] = []
    real = store.prune_usage

    def counted(before: date) -> int:
        rounds.append(time.monotonic())
        return real(before)

    monkeypatch.setattr(store, "prune_usage", counted)
    keeper = Housekeeping(store, interval=0.05)
    keeper.start()
    try:
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rounds) >= 3
    finally:
        keeper.stop()
    done = len(rounds)
    time.sleep(0.2)
    assert len(rounds) == done  # stopped means stopped
    assert not any(t.name == "gembot-housekeeping" for t in threading.enumerate())


def test_the_default_round_is_hourly() -> None:
    assert inspect.signature(Housekeeping).parameters["interval"].default == 3600.0


def test_a_database_that_is_away_costs_one_line_a_part(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "CONNECT_RETRY_DELAY", 0.01)
    store = Store(make_engine("postgresql://gembot:hunter2@127.0.0.1:1/gembot"))
    try:
        with caplog.at_level(logging.INFO, logger="bot.background"):
            keeper = Housekeeping(store)
            assert keeper.run() == Pruned(None, None, None, None, None, None, None, None)
            assert keeper.sweep() == 0  # what the background thread runs: nothing raised
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.background"]
    assert len(lines) == 16 and all("\n" not in line for line in lines), lines
    assert lines[0].startswith("could not prune usage counters of days before ")
    assert lines[1].startswith("could not prune expired OAuth install states: cannot use the database ")
    assert lines[2].startswith(
        "could not prune conversation turns older than 30 days: cannot use the database "
    )
    assert lines[3].startswith("could not prune finished jobs older than 7 days: ")
    assert lines[4].startswith("could not prune request ids older than 24 hours: ")
    assert lines[5].startswith("could not prune answers and their feedback older than 30 days: ")
    assert lines[6].startswith("could not prune cached experiment replies older than 90 days: ")
    assert all("127.0.0.1" in line and "hunter2" not in line for line in lines)


# -- in the serving process ------------------------------------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a pruning thread waiting


def test_the_serving_process_prunes_on_its_own_round_and_no_request_waits(
    make_bot_server: MakeBotServer,
    database_url: str,
    release: threading.Event,
) -> None:
    today = datetime.now(UTC).date()
    before_start = Store.open(database_url)
    try:
        count_days(before_start, "T0TEAM", "U0HUMAN", today - timedelta(days=8), today)
        SQLAlchemyOAuthStateStore(expiration_seconds=-60, engine=before_start.engine).issue()
        old = before_start.add_turn("T0TEAM", "C1", "1.1", "user", "hi", images=[("image/png", b"a")])
        backdate(before_start, old, timedelta(days=31))
    finally:
        before_start.close()
    started = threading.Event()

    def wire(app: App, deps: Deps) -> None:
        # No middleware prunes: the round is the process's own, started by `Lifecycle.start`.
        assert not any("Housekeeping" in type(m).__name__ for m in app._middleware_list)
        real_prune = deps.store.prune_usage

        def slow_prune(before: date) -> int:
            started.set()
            assert release.wait(timeout=20)  # as slow as the test wants
            return real_prune(before)

        deps.store.prune_usage = slow_prune  # type: ignore[method-assign]

    server = make_bot_server(database_url=database_url, setup=wire)
    assert server.deps is not None and server.lifecycle is not None
    store = server.deps.store
    # The round started with the process, before any request came in.
    assert started.wait(timeout=10)
    reply = server.send_command("/label", "sets")
    assert reply.status == 200 and reply.elapsed < 3.0
    server.slack.wait_for_response()  # answered while the pruning still waits
    assert counter_days(store) == [today - timedelta(days=8), today]

    release.set()
    deadline = time.monotonic() + 10
    while row_counts(store) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert row_counts(store) == (0, 0)
    assert counter_days(store) == [today]
    assert oauth_state_count(store) == 0
    server.stop()
    assert not any(t.name == "gembot-housekeeping" for t in threading.enumerate())


def test_a_lifecycle_without_an_app_prunes_too(database_url: str) -> None:
    # Socket Mode and the HTTP workers share `Lifecycle`; the round does not need the app.
    settings = Settings.from_env({"DATABASE_URL": database_url, "GEMBOT_EMBEDDER": "local"}, dotenv=NO_DOTENV)
    deps = Deps.open(settings)
    try:
        lifecycle = Lifecycle(deps, client_for=lambda job: None)
        old = deps.store.add_turn("T1", "C1", "1.1", "user", "hi")
        backdate(deps.store, old, timedelta(days=31))
        lifecycle.start()
        deadline = time.monotonic() + 10
        while row_counts(deps.store) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert row_counts(deps.store) == (0, 0)
        assert lifecycle.shutdown(timeout=5)
    finally:
        deps.close()


def test_a_stop_does_not_wait_for_a_slow_round_past_its_time(
    database_url: str, release: threading.Event
) -> None:
    settings = Settings.from_env({"DATABASE_URL": database_url, "GEMBOT_EMBEDDER": "local"}, dotenv=NO_DOTENV)
    deps = Deps.open(settings)
    started = threading.Event()

    def stuck(before: date) -> int:
        started.set()
        release.wait(timeout=20)
        return 0

    deps.store.prune_usage = stuck  # type: ignore[method-assign]
    try:
        lifecycle = Lifecycle(deps, client_for=lambda job: None)
        lifecycle.start()
        assert started.wait(timeout=10)
        begun = time.monotonic()
        assert lifecycle.shutdown(timeout=0.5)  # nothing in flight: the round is not a listener
        assert time.monotonic() - begun < 2.0
    finally:
        release.set()
        deps.close()
