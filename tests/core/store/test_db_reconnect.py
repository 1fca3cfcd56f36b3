"""The store survives a PostgreSQL restart: dropped connections are replaced, a refused connection is
tried once more, a read that lost its connection is run again, and a write is never replayed.

A restart is simulated by terminating every server process of the test database
(`pg_terminate_backend`): to the pool that is what a restart looks like, and the shared server
keeps running for every other test. `tests/bot/test_postgres_restart.py` stops and starts a real
(private) server under load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from core.errors import DatabaseUnavailable
from core.store import ExampleInput, Store
from core.store import db as store_db
from core.store.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL

TEAM = "T1"


@pytest.fixture
def backend() -> str:
    # Only PostgreSQL has connections to lose.
    return "postgres"


@pytest.fixture
def admin() -> Iterator[Engine]:
    engine = make_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def restart(admin: Engine, database_url: str) -> int:
    """Terminate every connection to the test database, as a server restart would; returns how many."""
    with admin.connect() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": make_url(database_url).database},
            ).all()
        )


def test_every_call_after_a_restart_succeeds(store: Store, admin: Engine, database_url: str) -> None:
    store.add_examples(TEAM, "support", [ExampleInput("bug", "It crashes")])
    assert [s.name for s in store.list_sets(TEAM)] == ["support"]  # a pooled connection is open
    assert restart(admin, database_url) >= 1
    # The pool's pre-ping notices the dead connection and opens a new one: no error reaches anyone.
    assert [s.name for s in store.list_sets(TEAM)] == ["support"]
    assert restart(admin, database_url) >= 1
    store.add_examples(TEAM, "support", [ExampleInput("bug", "It freezes")])
    assert restart(admin, database_url) >= 1
    store.ping()
    assert len(store.list_examples(TEAM, "support")) == 2


def test_a_read_that_loses_its_connection_runs_once_more(
    admin: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the pre-ping, the next query meets the dead connection itself, as one does when the
    # server goes away between the ping and the query.
    engine = create_engine(database_url, pool_size=1)
    store = Store(engine)
    try:
        store.add_examples(TEAM, "support", [ExampleInput("bug", "It crashes")])
        restart(admin, database_url)
        with caplog.at_level(logging.INFO, logger="core.store.db"):
            assert [s.name for s in store.list_sets(TEAM)] == ["support"]
        assert "the database connection broke during list_sets: trying once more" in caplog.text

        restart(admin, database_url)
        # A write is not replayed: the lost answer may have been to a COMMIT that went through.
        with pytest.raises(DatabaseUnavailable) as lost:
            store.add_examples(TEAM, "support", [ExampleInput("bug", "It freezes")])
        assert store_db.disconnected(lost.value)
        store.add_examples(TEAM, "support", [ExampleInput("bug", "It freezes")])  # the next one works
        assert len(store.list_examples(TEAM, "support")) == 2
    finally:
        store.close()


def test_a_refused_connection_is_tried_once_more(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "CONNECT_RETRY_DELAY", 0.01)
    dialect: Any = store.engine.dialect
    real_connect = dialect.connect
    refusals = [1]
    attempts: list[int] = []

    def connect(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if refusals[0] > 0:
            refusals[0] -= 1
            raise dialect.loaded_dbapi.OperationalError("the database system is starting up")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(dialect, "connect", connect)
    store.engine.dispose()  # no pooled connection: the next call connects
    store.ping()
    assert len(attempts) == 2

    refusals[0] = 2  # still down on the second try: the caller hears about it, in one line
    store.engine.dispose()
    with pytest.raises(DatabaseUnavailable, match="the database system is starting up"):
        store.ping()
    assert len(attempts) == 4
    store.ping()


def test_a_database_known_to_be_down_is_not_waited_for_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the database is down every query would otherwise wait out the pause, and a Slack ack
    # that makes two queries would take two pauses.
    monkeypatch.setattr(store_db, "CONNECT_RETRY_DELAY", 0.5)
    dialect: Any = store.engine.dialect
    real_connect = dialect.connect
    down = [True]
    attempts: list[float] = []

    def connect(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        if down[0]:
            raise dialect.loaded_dbapi.OperationalError("connection refused")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(dialect, "connect", connect)
    store.engine.dispose()
    with pytest.raises(DatabaseUnavailable):
        store.ping()
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.5  # tried again after the pause

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        store.ping()
    assert len(attempts) == 3 and time.monotonic() - started < 0.5  # known down: told at once

    down[0] = False
    store.ping()  # back: the first try connects
    assert len(attempts) == 4

    down[0] = True  # down again after a success: worth the pause once more
    store.engine.dispose()
    with pytest.raises(DatabaseUnavailable):
        store.ping()
    assert len(attempts) == 6

    monkeypatch.setattr(store_db, "DOWN_FOR", 0.1)
    with pytest.raises(DatabaseUnavailable):
        store.ping()  # still taken as down (the mark was set before DOWN_FOR changed)
    time.sleep(0.2)  # nothing refused for longer than DOWN_FOR: the next refusal pauses again
    with pytest.raises(DatabaseUnavailable):
        store.ping()
    assert len(attempts) == 9
