"""Pruning (`bot.housekeeping`): daily usage counters older than a week and expired OAuth install
states are deleted, at most once an hour per process, on a thread of the pruning's own, so that no
answer waits for it and a failure is one log line. On SQLite and PostgreSQL; once through the
running Slack app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import func, select

from bot.housekeeping import USAGE_RETENTION, Housekeeping, Pruned, prune_oauth_states
from core.store import Store
from core.store import db as store_db
from core.store.db import make_engine
from core.store.models import UsageCounter, slack_oauth_states
from core.usage import UsageCount
from handlers.deps import Deps
from tests import slack_fixtures
from tests.slack_fixtures import MakeBotServer

slack_standin = slack_fixtures.slack_standin
gemini_standin = slack_fixtures.gemini_standin
make_bot_server = slack_fixtures.make_bot_server


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
    assert pruned == Pruned(usage_counters=5, oauth_states=0)
    assert counter_days(store) == sorted(week)
    assert store.usage("T1", "U1", today) == UsageCount(user=1, team=1)
    assert store.usage("T1", "U1", week[-1]) == UsageCount(user=1, team=1)
    assert store.usage("T1", "U1", old[0]) == UsageCount(user=0, team=0)
    # Today's counter still counts on from where it was.
    assert store.consume_usage("T1", "U1", today, user_limit=2, team_limit=None) is None
    assert store.consume_usage("T1", "U1", today, user_limit=2, team_limit=None) == "user"
    assert Housekeeping(store).run() == Pruned(usage_counters=0, oauth_states=0)


def test_prune_usage_deletes_the_days_before_the_one_given(store: Store) -> None:
    count_days(store, "T1", "U1", date(2025, 3, 13), date(2025, 3, 14))
    assert store.prune_usage(date(2025, 3, 13)) == 0
    assert store.prune_usage(date(2025, 3, 14)) == 2
    assert counter_days(store) == [date(2025, 3, 14)]


@pytest.mark.parametrize("name", ["usage", "label_history", "example_added_by"])
def test_the_read_only_usage_and_change_log_methods_run_once_more_after_a_lost_connection(name: str) -> None:
    assert hasattr(getattr(Store, name), "__wrapped__"), f"Store.{name} is not @read_retried"


def test_pruning_is_a_write_and_never_replayed() -> None:
    assert not hasattr(Store.prune_usage, "__wrapped__")


# -- OAuth install states --------------------------------------------------------------------------


def test_expired_oauth_states_are_deleted_and_live_ones_still_work(store: Store) -> None:
    # slack_sdk's own state store on the store's engine, as `bot.oauth` sets it up.
    live = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=store.engine)
    lapsed = SQLAlchemyOAuthStateStore(expiration_seconds=-60, engine=store.engine)
    fresh = live.issue()
    stale = [lapsed.issue() for _ in range(3)]
    assert oauth_state_count(store) == 4
    assert Housekeeping(store).run() == Pruned(usage_counters=0, oauth_states=3)
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


# -- when, and what a failure does ------------------------------------------------------------------


def test_a_process_prunes_at_most_once_an_hour(store: Store) -> None:
    keeper = Housekeeping(store)
    assert keeper.now_and_then()
    assert keeper.thread is not None and keeper.thread.name == "gembot-housekeeping"
    keeper.thread.join(timeout=10)
    first = keeper.thread
    assert not keeper.now_and_then() and keeper.thread is first
    eager = Housekeeping(store, every=0)
    assert eager.now_and_then() and eager.now_and_then()
    assert eager.thread is not None
    eager.thread.join(timeout=10)


def test_a_database_that_is_away_costs_one_line_a_part(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "CONNECT_RETRY_DELAY", 0.01)
    store = Store(make_engine("postgresql://gembot:hunter2@127.0.0.1:1/gembot"))
    try:
        with caplog.at_level(logging.INFO, logger="bot.housekeeping"):
            assert Housekeeping(store).run() == Pruned(usage_counters=None, oauth_states=None)
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.housekeeping"]
    assert len(lines) == 2 and all("\n" not in line for line in lines), lines
    assert lines[0].startswith("could not prune usage counters of days before ")
    assert lines[1].startswith("could not prune expired OAuth install states: cannot use the database ")
    assert all("127.0.0.1" in line and "hunter2" not in line for line in lines)


def test_a_round_that_cannot_start_does_not_stop_the_request(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = Housekeeping(store)

    def no_thread() -> bool:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(keeper, "now_and_then", no_thread)
    answered = BoltResponse(status=200, body="answered")
    with caplog.at_level(logging.WARNING, logger="bot.housekeeping"):
        got = keeper.process(
            req=BoltRequest(body="", headers={}), resp=BoltResponse(status=200), next=lambda: answered
        )
    assert got is answered
    assert caplog.messages == ["could not start pruning old rows: RuntimeError: can't start new thread"]


# -- through the running app ---------------------------------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a pruning thread waiting


def test_the_middleware_prunes_without_holding_up_the_answer(
    make_bot_server: MakeBotServer,
    database_url: str,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    today = datetime.now(UTC).date()
    keepers: list[Housekeeping] = []

    def wire(app: App, deps: Deps) -> None:
        # What bot/app.py's build_app does with the line `app.use(Housekeeping(deps.store))`.
        keepers.append(Housekeeping(deps.store))
        app.use(keepers[0])

    server = make_bot_server(database_url=database_url, setup=wire)
    assert server.deps is not None
    store = server.deps.store
    count_days(store, server.team, "U0HUMAN", today - timedelta(days=8), today)
    SQLAlchemyOAuthStateStore(expiration_seconds=-60, engine=store.engine).issue()
    (keeper,) = keepers
    started = threading.Event()
    real_prune = store.prune_usage

    def slow_prune(before: date) -> int:
        started.set()
        assert release.wait(timeout=20)  # as slow as the test wants
        return real_prune(before)

    monkeypatch.setattr(store, "prune_usage", slow_prune)

    reply = server.send_command("/label", "sets")
    assert reply.status == 200 and reply.elapsed < 3.0
    assert started.wait(timeout=10)
    server.slack.wait_for_response()  # answered while the pruning still waits
    assert keeper.thread is not None and keeper.thread.is_alive()
    assert counter_days(store) == [today - timedelta(days=8), today]

    release.set()
    keeper.thread.join(timeout=10)
    assert counter_days(store) == [today]
    assert oauth_state_count(store) == 0
    # A second request within the hour starts no second round.
    first = keeper.thread
    assert server.send_command("/label", "sets").status == 200
    server.settle()
    assert keeper.thread is first
