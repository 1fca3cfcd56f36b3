"""Shared fixtures.

Stand-ins: the fixture modules of `tests/support` are registered once here (`pytest_plugins`), so
every test module can ask for `slack_standin`, `gemini_standin`, `bot_server`, `make_bot_server`
(`tests.support.slack_fixtures`, `tests.support.gemini_fixtures`) and `private_postgres`
(`tests.support.pg_cluster`) by name, with nothing to import.

Databases: every test that asks for `database_url`, `empty_database_url` or `store` runs twice,
as `[sqlite]` and `[postgres]`. PostgreSQL comes from GEMBOT_TEST_POSTGRES_URL (an admin URL,
default postgres@127.0.0.1:5432 with trust auth); when it cannot be reached those tests fail,
never skip, so CI cannot go green without them. Locally, `-k "not postgres"` leaves them out.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from core.store import Store
from core.store.db import make_engine, unavailable, upgrade
from core.store.schema import Base

pytest_plugins = [
    "tests.support.gemini_fixtures",
    "tests.support.slack_fixtures",
    "tests.support.pg_cluster",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "GEMBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class PostgresServer:
    """Creates and drops uniquely named databases through an admin connection."""

    def __init__(self, admin: Engine) -> None:
        self._admin = admin

    def create_database(self) -> str:
        name = f"gembot_test_{uuid.uuid4().hex[:16]}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._admin.connect() as conn:
            # FORCE: a test that failed half-way may have left a connection open.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    admin = make_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    problem = None
    try:
        with admin.connect():
            pass
    except DBAPIError as exc:
        problem = unavailable(admin, exc)
    if problem is not None:
        # Outside the except block, so the report is this one line, not two chained tracebacks.
        pytest.fail(
            f"PostgreSQL tests cannot run: {problem}. Start PostgreSQL or set "
            "GEMBOT_TEST_POSTGRES_URL; deselect them with -k 'not postgres'.",
            pytrace=False,
        )
    yield PostgresServer(admin)
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; tests get copies of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "gembot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_shared_url(postgres_server: PostgresServer) -> Iterator[str]:
    """One migrated PostgreSQL database per session, emptied before each test that uses it."""
    url = postgres_server.create_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    postgres_server.drop_database(url)


def _empty_postgres_tables(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            # A connection leaked by an earlier test must make this fail, not hang.
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind this run of the test uses; ask for it to run a test on both."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at the newest schema with no rows in it, for this test alone.

    SQLite: a copy of a migrated file. PostgreSQL: a database migrated once per session and
    emptied here, which is much faster than creating one per test (ids therefore do not
    restart at 1: tests must not assume them).
    """
    if backend == "sqlite":
        path = tmp_path / "gembot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_shared_url")
    _empty_postgres_tables(url)
    return url


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new database with no schema at all (PostgreSQL: created and dropped for this test)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """`Store.open(database_url)`, closed after the test."""
    opened = Store.open(database_url)
    yield opened
    opened.close()
