"""Alembic's entry point, used both by `core.store.db.upgrade` and by the `alembic` command.

`core.store.db` hands over a connection that already holds the migration lock and an open
transaction (in `config.attributes["connection"]`). From the `alembic` command line there is
none: the URL comes from `-x url=...`, else `sqlalchemy.url` in alembic.ini, else DATABASE_URL
(the same setting Gembot reads), and the same lock is taken here.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from core.settings import Settings
from core.store.db import make_engine, migration_connection
from core.store.schema import Base

config = context.config
target_metadata = Base.metadata

# Only the `alembic` command reads alembic.ini's logging setup; a Gembot process that migrates
# itself keeps the logging it configured.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or Settings.from_env().database_url
    )


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with migration_connection(engine) as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
