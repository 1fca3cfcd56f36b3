"""Engines and schema migrations: connecting to SQLite or PostgreSQL and bringing the schema to head.

The migrations ship inside the `migrations` package, so `upgrade` finds them next to
`migrations.__file__` whether Gembot runs from a checkout or from an installed wheel.

Surviving a PostgreSQL restart: the pool pings a connection before handing it out and replaces
it when the server dropped it (`pool_pre_ping`); opening a connection is tried once more after a
short pause when the server refuses it (it may be starting up); and a read-only `Store` method
(`read_retried`) runs once more when the connection broke under it. A write is never replayed:
when the connection breaks during a write the COMMIT may have reached the server, so the caller
gets DatabaseUnavailable rather than a second copy.

The pause is paid only while the server may be coming back: once both tries have failed, the
engine takes the database to be down, and until a connection succeeds (or nothing has been
refused for `DOWN_FOR` seconds) a refused connection is reported at once. Otherwise every query
during an outage would wait out the pause, and a Slack request, whose acknowledgement makes
several queries within 3 seconds, would be acknowledged too late.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import migrations
from core.errors import DatabaseUnavailable, InvalidInput

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

# The key of the PostgreSQL advisory lock held while migrating: "gembot" in ASCII.
MIGRATION_LOCK_KEY = 0x67656D626F74

# Errors that mean "the database is not there or not answering", as opposed to a bug in a query.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

OUT_OF_DATE = "the database schema is out of date: run `gembot db upgrade`"

# A refused connection is tried once more after this pause (seconds): long enough for a
# restarting PostgreSQL to accept connections again, short enough to keep a request waiting.
CONNECT_RETRY_DELAY = 1.0
# Seconds after a refused connection during which the database is taken to be down (see the
# module doc): refusals are reported without the pause.
DOWN_FOR = 5.0

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def execute_dml(s: Session, statement: Any) -> CursorResult[Any]:
    """Run an UPDATE or DELETE and return its cursor, typed so that `rowcount` (who won a
    conditional update) can be read: `Session.execute` is typed for SELECTs."""
    result: CursorResult[Any] = s.execute(statement)  # type: ignore[assignment]
    return result


def make_engine(url: str) -> Engine:
    """An engine for `url`, set up for the backend it names.

    `postgres://` and `postgresql://` mean psycopg 3, the driver Gembot installs. SQLite gets
    foreign keys switched on (it ignores them otherwise, and the cascades depend on them) and
    may be used from several threads, as the Slack handlers do.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not echoed back: a malformed URL may still contain a password.
        raise InvalidInput(
            "the database URL is not one Gembot can read "
            "(expected e.g. sqlite:///gembot.db or postgresql://user:password@host/dbname)"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
    if backend == "sqlite":
        _check_sqlite_directory(parsed)
        options["connect_args"] = {"check_same_thread": False}
        if _sqlite_in_memory(parsed):
            # One shared connection, or every pooled connection would see its own empty database.
            options["poolclass"] = StaticPool
    elif backend == "postgresql":
        options["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query:
            # A firewalled host would otherwise hang startup for minutes before failing.
            options["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **options)
    except NoSuchModuleError:
        raise InvalidInput(f"Gembot does not know the database kind {parsed.drivername!r}") from None
    except ImportError:
        raise DatabaseUnavailable(
            f"the database driver for {parsed.drivername} is not installed"
            " (for PostgreSQL: pip install 'gembot[postgres]')"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    elif backend == "postgresql":
        event.listen(engine, "do_connect", RetryingConnect())
    return engine


def read_retried(method: Callable[P, R]) -> Callable[P, R]:
    """Run a read-only store method once more when the database dropped its connection under it.

    Only for methods that write nothing: running them twice is harmless. Other failures (the
    database still down, a bad query) are raised as they are.
    """

    @functools.wraps(method)
    def retried(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DatabaseUnavailable as exc:
            if not disconnected(exc):
                raise
            log.info("the database connection broke during %s: trying once more", method.__name__)
            return method(*args, **kwargs)

    return retried


def disconnected(exc: BaseException) -> bool:
    """Whether `exc` (or the driver error it wraps) says the connection itself was lost."""
    cause = exc if isinstance(exc, DBAPIError) else exc.__cause__
    return isinstance(cause, DBAPIError) and bool(cause.connection_invalidated)


def masked_url(engine: Engine) -> str:
    """The engine's URL as it may be shown to people: the password replaced by ***."""
    return engine.url.render_as_string(hide_password=True)


def unavailable(engine: Engine, exc: BaseException) -> DatabaseUnavailable:
    """A one-line DatabaseUnavailable for a driver error, naming the database but never its password."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0].strip() if reason else type(exc).__name__
    password = engine.url.password
    if password:
        text = text.replace(str(password), "***")
    return DatabaseUnavailable(f"cannot use the database {masked_url(engine)}: {text}")


def head_revision() -> str:
    """The newest migration this version of Gembot ships."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise DatabaseUnavailable("no database migrations are installed with Gembot")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return _current(conn)
    except CONNECTION_ERRORS as exc:
        raise unavailable(engine, exc) from exc


def check_at_head(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless the schema is exactly the one this code expects."""
    current = current_revision(engine)
    _check_known(current)
    if current != head_revision():
        raise DatabaseUnavailable(OUT_OF_DATE)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; does nothing (one query) when it is already there.

    Safe to call from several processes at once: the migration runs under a database-wide lock
    and the revision is checked again once the lock is held.
    """
    head = head_revision()
    current = current_revision(engine)
    _check_known(current)
    if current == head:
        return
    _migrate(engine, lambda cfg: command.upgrade(cfg, "head"), done=lambda rev: rev == head)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` ("base" = empty). Destroys the data the later migrations hold."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision), done=lambda rev: False)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the shipped migrations, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the migration lock; commits on success.

    PostgreSQL: a transaction-scoped advisory lock, so concurrent workers queue up and the
    migration itself is transactional. SQLite: an exclusive transaction, with foreign keys off
    while it lasts, because Alembic's batch mode recreates tables and dropping a parent table
    with foreign keys on would cascade-delete its children.
    """
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
                try:
                    conn.exec_driver_sql("BEGIN EXCLUSIVE")
                    yield conn
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise DatabaseUnavailable(f"a migration broke a foreign key in table {broken[0]}")
                    conn.commit()
                finally:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
            else:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
                    yield conn
    except CONNECTION_ERRORS as exc:
        raise unavailable(engine, exc) from exc


def _migrate(engine: Engine, action: Callable[[Config], None], *, done: Callable[[str | None], bool]) -> None:
    try:
        with migration_connection(engine) as conn:
            # Another worker may have migrated while this one waited for the lock.
            if not done(_current(conn)):
                action(alembic_config(conn))
    except CommandError as exc:
        raise DatabaseUnavailable(f"the database migration failed: {exc}") from exc


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    try:
        known = _script().get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise DatabaseUnavailable(
            f"the database schema is at revision {revision!r}, which this version of Gembot does not "
            "know: upgrade Gembot"
        )


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    # Parsing the migration scripts costs a few milliseconds; every `Store.open` needs the head.
    return ScriptDirectory.from_config(alembic_config())


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _check_sqlite_directory(url: URL) -> None:
    # SQLite's own error ("unable to open database file") does not say which part is wrong.
    if _sqlite_in_memory(url) or url.database is None or url.database.startswith("file:"):
        return
    directory = Path(url.database).resolve().parent
    if not directory.is_dir():
        raise DatabaseUnavailable(
            f"cannot use the database {url.render_as_string(hide_password=True)}: "
            f"the directory {directory} does not exist"
        )


class RetryingConnect:
    """Opens every new PostgreSQL connection of one engine (the pool's first, and each one replacing
    a connection the pre-ping found dead): a refusal is tried once more after a pause, unless the
    database is already known to be down (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until = 0.0

    def __call__(self, dialect: Any, connection_record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            connection = dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            if self._known_down():
                self._mark_down()
                raise
            log.info("could not connect to the database (%s): trying once more", _first_line(exc))
            time.sleep(CONNECT_RETRY_DELAY)
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError:
                self._mark_down()
                raise
        with self._lock:
            self._down_until = 0.0
        return connection

    def _known_down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def _mark_down(self) -> None:
        with self._lock:
            self._down_until = time.monotonic() + DOWN_FOR


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
