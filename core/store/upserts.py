"""INSERT … ON CONFLICT, which SQLAlchemy spells per dialect: the one place that picks the spelling.

ON CONFLICT rather than catching IntegrityError: a failed INSERT would abort a PostgreSQL
transaction, and this way a racing second writer inserts nothing (DO NOTHING) or overwrites
(DO UPDATE) without a race window.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.errors import DatabaseUnavailable


def insert(session: Session, table: Any, *, needs: str) -> Any:
    """`INSERT INTO table` for the session's database, with `on_conflict_do_nothing` /
    `on_conflict_do_update`; DatabaseUnavailable for any database but PostgreSQL or SQLite,
    worded as `needs` ("the embedding cache needs") + "SQLite or PostgreSQL"."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise DatabaseUnavailable(f"{needs} SQLite or PostgreSQL, not {dialect}")
