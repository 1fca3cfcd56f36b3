"""Daily usage counters: the queries behind `Store.consume_usage`, run inside the caller's transaction.

A counter row is made (INSERT … ON CONFLICT DO NOTHING, so racing processes make one), then
taken from by a single `UPDATE … SET used = used + n WHERE … AND used + n <= limit`: the
database evaluates the condition against the latest committed value under the row's lock
(PostgreSQL re-checks it after waiting for a concurrent writer; SQLite lets one writer in at a
time), so no interleaving of processes can take a counter past its limit.

Only the current day's counters are ever read: `prune` deletes older days' (`Store.prune_usage`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from core.daily_limits import Scope, UsageCount
from core.store import upserts
from core.store.schema import UsageCounter

#: The `user_id` of the row that counts the whole workspace's calls.
TEAM_ROW = ""


class Refused(Exception):
    """Raised inside the transaction so that it rolls back what it already took."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.scope = scope


def consume(
    s: Session,
    team_id: str,
    user_id: str | None,
    day: date,
    n: int,
    *,
    user_limit: int | None,
    team_limit: int | None,
) -> None:
    """Take `n` from the user's and the workspace's counters; raise Refused naming the first
    that would pass its limit (the caller's transaction must then roll back)."""
    # Always the user's row first, then the workspace's: every transaction locks in that order,
    # so two of them can wait for each other but never deadlock.
    counters: list[tuple[Scope, str, int]] = []
    if user_id and user_limit is not None:
        counters.append(("user", user_id, user_limit))
    if team_limit is not None:
        counters.append(("team", TEAM_ROW, team_limit))
    for scope, who, limit in counters:
        _ensure_row(s, team_id, who, day)
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(UsageCounter)
            .where(
                UsageCounter.team_id == team_id,
                UsageCounter.user_id == who,
                UsageCounter.day == day,
                UsageCounter.used + n <= limit,
            )
            .values(used=UsageCounter.used + n)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise Refused(scope)


def count(s: Session, team_id: str, user_id: str | None, day: date) -> UsageCount:
    """The user's and the workspace's calls on `day` (0 where nothing was counted)."""
    wanted = [TEAM_ROW] + ([user_id] if user_id else [])
    rows = dict(
        s.execute(
            select(UsageCounter.user_id, UsageCounter.used).where(
                UsageCounter.team_id == team_id,
                UsageCounter.day == day,
                UsageCounter.user_id.in_(wanted),
            )
        ).all()
    )
    user = int(rows.get(user_id, 0)) if user_id else 0
    return UsageCount(user=user, team=int(rows.get(TEAM_ROW, 0)))


def prune(s: Session, before: date) -> int:
    """Delete the counters of days before `before`; returns how many rows went."""
    result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
        delete(UsageCounter).where(UsageCounter.day < before).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _ensure_row(s: Session, team_id: str, user_id: str, day: date) -> None:
    # A racing second insert simply adds nothing (`core.store.upserts`).
    statement = upserts.insert(s, UsageCounter, needs="usage limits need").on_conflict_do_nothing()
    s.execute(statement.values(team_id=team_id, user_id=user_id, day=day, used=0))
