"""Slack event de-duplication: the first process to insert an `event_id` owns that delivery.

Slack redelivers an event (same `event_id`, an `X-Slack-Retry-Num` header) when it saw no timely
answer, and after a restart or behind several workers the redelivery may reach another process.
A unique constraint decides, inside the database, which delivery is the first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.errors import DatabaseUnavailable
from core.store.models import EVENT_ID_LENGTH, SlackEvent, utcnow


def claim(s: Session, team_id: str, event_id: str) -> bool:
    """Insert the event unless it is there; True when this call inserted it."""
    dialect = s.get_bind().dialect.name
    # ON CONFLICT DO NOTHING rather than catching IntegrityError: a failed INSERT would abort a
    # PostgreSQL transaction, and this way a racing second claim simply inserts no row.
    if dialect == "postgresql":
        statement: Any = postgresql.insert(SlackEvent).on_conflict_do_nothing(index_elements=["event_id"])
    elif dialect == "sqlite":
        statement = sqlite.insert(SlackEvent).on_conflict_do_nothing(index_elements=["event_id"])
    else:
        raise DatabaseUnavailable(f"event de-duplication needs SQLite or PostgreSQL, not {dialect}")
    inserted = s.scalar(
        statement.values(
            event_id=event_id[:EVENT_ID_LENGTH], team_id=team_id, received_at=utcnow()
        ).returning(SlackEvent.id)
    )
    return inserted is not None


def prune(s: Session, older_than: datetime) -> int:
    result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
        delete(SlackEvent).where(SlackEvent.received_at < older_than)
    )
    return int(result.rowcount or 0)
