"""Requests from Slack in flight, in the database: who is working on each, and what to run again.

Slack gives every request 3 seconds; Gembot answers at once and does the work afterwards, in the
process that took the request. If that process dies (a kill, an out-of-memory, a lost host), the
work would be lost with it: Slack resends nothing it saw acknowledged. So each request is claimed
here first, with its payload and a lease that the working process keeps renewing; once the work
is finished the payload is dropped and only the id remains, to recognise redeliveries. A request
whose lease lapses unfinished is taken over, one attempt at a time, by another process.

Every change of hands is one conditional UPDATE, so the database decides races between processes.
Leases are timestamps from the writing process's clock: keep the hosts' clocks in sync (NTP).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, delete, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import upserts, validation
from core.store.schema import EVENT_ID_LENGTH, TEAM_ID_LENGTH, SlackEvent, utcnow

Sessions = Callable[[], AbstractContextManager[Session]]


class Claim(enum.Enum):
    """What claiming a request found."""

    NEW = "new"  # first seen: this process does the work
    RETAKEN = "retaken"  # seen before, unfinished, its lease lapsed: this process does it again
    TAKEN = "taken"  # finished, or another process holds it: drop this delivery


@dataclass(frozen=True)
class Abandoned:
    """A request taken over from a process that stopped renewing its lease."""

    key: str
    team_id: str
    attempts: int
    payload: dict[str, Any] = field(repr=False)


class DeliveryStore:
    """The delivery methods of `Store` (`store.deliveries`): one transaction each."""

    def __init__(self, sessions: Sessions) -> None:
        self._session = sessions

    def claim(self, key: str, *, team_id: str, payload: dict[str, Any] | None, lease: timedelta) -> Claim:
        """Claim the request `key` (an `event_id` or a `trigger_id`) for `lease`, keeping `payload` to
        run it again if this process dies first.

        A redelivery of an unfinished request whose lease lapsed takes it over (RETAKEN).
        """
        key = _key(key)
        team = validation.clean(team_id or "-", what="workspace id", limit=TEAM_ID_LENGTH)
        now = utcnow()
        body = None if payload is None else json.dumps(payload, separators=(",", ":"))
        with self._session() as s, s.begin():
            inserted = s.scalar(
                upserts.insert(s, SlackEvent, needs="request tracking needs")
                .values(event_id=key, team_id=team, received_at=now, lease_until=now + lease, payload=body)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(SlackEvent.id)
            )
            if inserted is not None:
                return Claim.NEW
            retaken = s.scalar(
                update(SlackEvent)
                .where(SlackEvent.event_id == key, _lapsed(now))
                .values(lease_until=now + lease, attempts=SlackEvent.attempts + 1)
                .returning(SlackEvent.id)
            )
            return Claim.RETAKEN if retaken is not None else Claim.TAKEN

    def finish(self, keys: Sequence[str]) -> None:
        """The work of `keys` is done: drop their payloads, keep their ids against redeliveries."""
        self._update_unfinished(keys, finished_at=utcnow(), payload=None, lease_until=None)

    def renew(self, keys: Sequence[str], lease: timedelta) -> None:
        """This process is still working on `keys`: push their leases `lease` into the future."""
        self._update_unfinished(keys, lease_until=utcnow() + lease)

    def _update_unfinished(self, keys: Sequence[str], **values: Any) -> None:
        if not keys:
            return
        with self._session() as s, s.begin():
            s.execute(
                update(SlackEvent)
                .where(SlackEvent.event_id.in_([_key(k) for k in keys]), SlackEvent.finished_at.is_(None))
                .values(**values)
            )

    def take_abandoned(self, *, lease: timedelta, max_attempts: int, limit: int) -> list[Abandoned]:
        """Take over up to `limit` unfinished requests whose lease lapsed and that have been tried
        fewer than `max_attempts` times."""
        if limit <= 0:
            return []
        now = utcnow()
        taken: list[Abandoned] = []
        with self._session() as s, s.begin():
            candidates = s.scalars(
                select(SlackEvent.id)
                .where(_lapsed(now), SlackEvent.attempts < max_attempts, SlackEvent.payload.is_not(None))
                .order_by(SlackEvent.lease_until)
                .limit(limit)
            ).all()
        for row_id in candidates:
            with self._session() as s, s.begin():
                # Another process may have taken it since the SELECT: the WHERE decides.
                row = s.execute(
                    update(SlackEvent)
                    .where(SlackEvent.id == row_id, _lapsed(now), SlackEvent.attempts < max_attempts)
                    .values(lease_until=now + lease, attempts=SlackEvent.attempts + 1)
                    .returning(
                        SlackEvent.event_id, SlackEvent.team_id, SlackEvent.attempts, SlackEvent.payload
                    )
                ).first()
            if row is not None and row.payload is not None:
                taken.append(Abandoned(row.event_id, row.team_id, row.attempts, json.loads(row.payload)))
        return taken

    def give_up(self, *, max_attempts: int) -> list[str]:
        """Close the requests whose lease lapsed after `max_attempts` tries (they keep killing the
        process that runs them, or cannot be run); returns their keys."""
        now = utcnow()
        with self._session() as s, s.begin():
            keys = s.scalars(
                update(SlackEvent)
                .where(_lapsed(now), SlackEvent.attempts >= max_attempts)
                .values(finished_at=now, payload=None, lease_until=None)
                .returning(SlackEvent.event_id)
            ).all()
        return list(keys)

    def prune(self, older_than: datetime) -> int:
        """Forget requests received before `older_than` (timezone-aware); returns how many went."""
        if older_than.tzinfo is None:
            raise InvalidInput("prune needs a timezone-aware datetime")
        with self._session() as s, s.begin():
            result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
                delete(SlackEvent).where(SlackEvent.received_at < older_than)
            )
            return int(result.rowcount or 0)


def _key(key: str) -> str:
    return validation.clean(key, what="request id", limit=EVENT_ID_LENGTH)


def _lapsed(now: datetime) -> Any:
    return and_(
        SlackEvent.finished_at.is_(None), SlackEvent.lease_until.is_not(None), SlackEvent.lease_until < now
    )
