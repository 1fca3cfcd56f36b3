"""Tuned encoders (a set's fine-tuned embedding model, as opaque bytes) and the requests to tune a
set again once its edits have settled.

Functions here take an open session and run inside the caller's transaction; `Store` owns the
transactions. A set has at most one tuned encoder: the newest tune replaces the last, and a tune
of an older version than the one kept is not kept. The store knows the bytes only by their
format number and their sha256, which it computes itself.

A tune job is one row per set. Every edit of a set that has a tuned encoder (`edited`, called by
`labels.bump`, so no edit path can miss it) moves the job's `requested_at` to now, and a job is
due only once `requested_at` is `settle_seconds` old: a burst of edits asks for one tune, after
the last. Every change of hands is one conditional UPDATE or DELETE, so the database decides
races, as in `core.store.jobs`: a process takes a job only while its lease is free, and finishes
it (deletes it) only while it still holds it and nothing asked for a tune since it took it.

Leases and settling are timestamps from the clock of the process that writes them: keep the
hosts' clocks in sync (NTP), well within the lease and settle lengths.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.store import upserts, validation
from core.store.db import execute_dml
from core.store.records import TunedEncoderInfo, TunedEncoderInput, TuneJob, from_row
from core.store.schema import (
    ACTOR_LENGTH,
    JOB_OWNER_LENGTH,
    TUNE_ERROR_LENGTH,
    TUNED_BASE_LENGTH,
    TUNED_KIND_LENGTH,
    LabelSet,
    TunedEncoderRow,
    TuneJobRow,
    utcnow,
)

log = logging.getLogger(__name__)

_INFO_COLUMNS = (
    TunedEncoderRow.team_id,
    TunedEncoderRow.set_name,
    TunedEncoderRow.set_version,
    TunedEncoderRow.base,
    TunedEncoderRow.kind,
    TunedEncoderRow.digest,
    TunedEncoderRow.format,
    TunedEncoderRow.examples,
    TunedEncoderRow.seconds,
    TunedEncoderRow.created_at,
)


def digest(blob: bytes) -> str:
    """The sha256 (hex) by which a tuned encoder's bytes are known."""
    return hashlib.sha256(blob).hexdigest()


# -- tuned encoders -------------------------------------------------------------------------------


def save(s: Session, encoder: TunedEncoderInput, blob: bytes) -> bool:
    """Keep `blob` as the set's tuned encoder; False, keeping nothing, when the set is gone (or
    is a newer set of the same name) or a tune of a later version is already kept."""
    team, name = validation.team_id(encoder.team_id), validation.set_name(encoder.set_name)
    version = validation.whole(encoder.set_version, what="set version", minimum=1)
    data = bytes(blob)
    if not data:
        raise InvalidInput("a tuned encoder cannot be empty")
    stored: dict[str, Any] = {
        "set_version": version,
        "base": validation.clean(encoder.base, what="base embedder", limit=TUNED_BASE_LENGTH),
        "kind": validation.clean(encoder.kind, what="tuned encoder kind", limit=TUNED_KIND_LENGTH),
        "digest": digest(data),
        "format": validation.whole(encoder.format, what="format"),
        "blob": data,
        "examples": validation.whole(encoder.examples, what="number of examples"),
        "seconds": validation.duration(encoder.seconds, what="tuning time"),
        "created_at": utcnow(),
    }
    # FOR KEY SHARE (PostgreSQL): a concurrent remove_set waits for this save and then deletes
    # what it wrote, or has already gone and this finds no set; an edit (which changes only the
    # version) is not held up. SQLite serializes writers anyway and ignores the clause.
    current = s.scalar(
        select(LabelSet.version)
        .where(LabelSet.team_id == team, LabelSet.name == name)
        .with_for_update(read=True, key_share=True)
    )
    # A version never goes down: a set now behind the tune's version was removed and created
    # again under its name while the tune ran, and the tune is of the old one.
    if current is None or current < version:
        return False
    insert = upserts.insert(s, TunedEncoderRow, needs="tuned encoders need")
    statement = insert.values(team_id=team, set_name=name, **stored).on_conflict_do_update(
        index_elements=["team_id", "set_name"],
        set_=stored,
        # A slow tune (its lease lost to a faster one) does not replace a tune of a later version.
        where=TunedEncoderRow.set_version <= insert.excluded.set_version,
    )
    # RETURNING rather than the row count, which an ORM-enabled INSERT on psycopg leaves at -1:
    # a row comes back only when one was written.
    return s.execute(statement.returning(TunedEncoderRow.set_version)).first() is not None


def info(s: Session, team_id: str, set_name: str) -> TunedEncoderInfo | None:
    """The set's tuned encoder without its bytes, or None when it has none."""
    row = s.execute(select(*_INFO_COLUMNS).where(*_key(TunedEncoderRow, team_id, set_name))).one_or_none()
    return None if row is None else TunedEncoderInfo(**row._asdict())


def blob(s: Session, team_id: str, set_name: str, wanted: str) -> bytes | None:
    """The bytes of the set's tuned encoder if their sha256 is `wanted`, else None (replaced)."""
    found = s.scalar(
        select(TunedEncoderRow.blob).where(
            *_key(TunedEncoderRow, team_id, set_name), TunedEncoderRow.digest == wanted.strip().lower()
        )
    )
    if found is None:
        return None
    data = bytes(found)
    # Checked on the way out too: damaged bytes handed to a model loader fail far from here.
    if digest(data) != wanted.strip().lower():
        log.warning("the tuned encoder of set %r does not match its digest: ignored", set_name.strip())
        return None
    return data


def forget(s: Session, team_id: str, set_name: str) -> None:
    """Delete the set's tuned encoder and its tune job (the set is being removed)."""
    s.execute(delete(TunedEncoderRow).where(*_key(TunedEncoderRow, team_id, set_name)))
    s.execute(delete(TuneJobRow).where(*_key(TuneJobRow, team_id, set_name)))


def forget_encoder(s: Session, team_id: str, set_name: str) -> bool:
    """Delete the set's tuned encoder only (a tune found the plain model better); True if one was kept."""
    gone = execute_dml(s, delete(TunedEncoderRow).where(*_key(TunedEncoderRow, team_id, set_name)))
    return gone.rowcount > 0


# -- tune jobs ------------------------------------------------------------------------------------


def edited(s: Session, team_id: str, set_name: str) -> None:
    """Ask again for a tune of an edited set: when it has a job (pending or running), move its
    `requested_at` to now; when it has none but a tuned encoder, create one. A set never tuned
    gets none. A running job keeps its holder, who then sees at `finish` that it is asked again.

    The attempts, the last error and any back-off start afresh: the new examples may be what
    the failing tunes lacked.
    """
    now = utcnow()
    again = {"requested_at": now, "attempts": 0, "last_error": None, "not_before": None, "updated_at": now}
    moved = execute_dml(s, update(TuneJobRow).where(*_key(TuneJobRow, team_id, set_name)).values(**again))
    if moved.rowcount:
        return
    tuned = s.scalar(select(TunedEncoderRow.set_version).where(*_key(TunedEncoderRow, team_id, set_name)))
    if tuned is not None:
        _upsert(s, team_id, set_name, again)


def request(s: Session, team_id: str, set_name: str, *, requested_by: str | None) -> None:
    """Ask for a tune of the set, now (`Store.request_tune`); NotFound when there is no such set."""
    team, name = validation.team_id(team_id), validation.set_name(set_name)
    by = validation.clean_optional(requested_by, what="requester", limit=ACTOR_LENGTH)
    # Locked as in `save`, so that a concurrent remove_set cannot leave a job without its set.
    found = s.scalar(
        select(LabelSet.id)
        .where(LabelSet.team_id == team, LabelSet.name == name)
        .with_for_update(read=True, key_share=True)
    )
    if found is None:
        raise NotFound(f"no label set '{name}' in this workspace")
    now = utcnow()
    _upsert(
        s,
        team,
        name,
        {
            "requested_at": now,
            "requested_by": by,
            "attempts": 0,
            "last_error": None,
            "not_before": None,
            "updated_at": now,
        },
    )


def due(s: Session, *, now: datetime, settled: datetime, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` jobs (team, set) that `take` may win, the longest waiting first."""
    return [
        (team, name)
        for team, name in s.execute(
            select(TuneJobRow.team_id, TuneJobRow.set_name)
            .where(_takeable(now, settled))
            .order_by(TuneJobRow.requested_at, TuneJobRow.team_id, TuneJobRow.set_name)
            .limit(limit)
        )
    ]


def take(
    s: Session, team_id: str, set_name: str, *, owner: str, now: datetime, settled: datetime, until: datetime
) -> TuneJob | None:
    """Take the job for `owner` until `until` if it is still free and due; None when another
    process took it first, or an edit has made it wait again."""
    won = execute_dml(
        s,
        update(TuneJobRow)
        .where(*_key(TuneJobRow, team_id, set_name), _takeable(now, settled))
        .values(owner=_owner(owner), lease_until=until, attempts=TuneJobRow.attempts + 1, updated_at=now),
    )
    if won.rowcount != 1:
        return None
    row = s.get(TuneJobRow, {"team_id": team_id, "set_name": set_name}, populate_existing=True)
    assert row is not None
    return _record(row)


def renew(s: Session, job: TuneJob, *, owner: str, until: datetime) -> bool:
    """Hold the job until `until`; False when `owner` no longer holds it."""
    held = execute_dml(
        s,
        update(TuneJobRow).where(*_held(job, owner)).values(lease_until=until, updated_at=utcnow()),
    )
    return held.rowcount == 1


def finish(s: Session, job: TuneJob, *, owner: str) -> bool:
    """Done with the job: delete it if nothing asked for a tune since `job` was claimed (True);
    otherwise give it back, its attempts at 0, to be tuned again once settled (False)."""
    done = execute_dml(
        s, delete(TuneJobRow).where(*_held(job, owner), TuneJobRow.requested_at == job.requested_at)
    )
    if done.rowcount == 1:
        return True
    execute_dml(
        s,
        update(TuneJobRow)
        .where(*_held(job, owner))
        .values(owner=None, lease_until=None, attempts=0, updated_at=utcnow()),
    )
    return False


def fail(
    s: Session, job: TuneJob, *, owner: str, error: str, not_before: datetime, max_attempts: int
) -> bool:
    """The tune failed: give the job back, not to be taken before `not_before`, with `error`
    (True); or, once it has been taken `max_attempts` times, delete it (False: given up)."""
    gave_up = execute_dml(
        s, delete(TuneJobRow).where(*_held(job, owner), TuneJobRow.attempts >= int(max_attempts))
    )
    if gave_up.rowcount == 1:
        return False
    # PostgreSQL's text refuses NUL, and an exception's message may hold anything.
    said = error.replace("\x00", "\ufffd").strip()[:TUNE_ERROR_LENGTH] or None
    execute_dml(
        s,
        update(TuneJobRow)
        .where(*_held(job, owner))
        .values(owner=None, lease_until=None, last_error=said, not_before=not_before, updated_at=utcnow()),
    )
    return True


def jobs(s: Session, team_id: str) -> list[TuneJob]:
    """The workspace's tune jobs, by set name."""
    rows = s.scalars(
        select(TuneJobRow).where(TuneJobRow.team_id == team_id.strip()).order_by(TuneJobRow.set_name)
    )
    return [_record(row) for row in rows]


# -- helpers --------------------------------------------------------------------------------------


def _key(table: type[TunedEncoderRow] | type[TuneJobRow], team_id: str, set_name: str) -> list[Any]:
    return [table.team_id == team_id.strip(), table.set_name == set_name.strip()]


def _takeable(now: datetime, settled: datetime) -> ColumnElement[bool]:
    return and_(
        TuneJobRow.requested_at <= settled,
        or_(TuneJobRow.not_before.is_(None), TuneJobRow.not_before <= now),
        or_(TuneJobRow.owner.is_(None), TuneJobRow.lease_until.is_(None), TuneJobRow.lease_until < now),
    )


def _held(job: TuneJob, owner: str) -> list[Any]:
    return [*_key(TuneJobRow, job.team_id, job.set_name), TuneJobRow.owner == _owner(owner)]


def _upsert(s: Session, team_id: str, set_name: str, values: dict[str, Any]) -> None:
    insert = upserts.insert(s, TuneJobRow, needs="tune jobs need")
    s.execute(
        insert.values(team_id=team_id.strip(), set_name=set_name.strip(), **values).on_conflict_do_update(
            index_elements=["team_id", "set_name"], set_=values
        )
    )


def _owner(owner: str) -> str:
    return validation.clean(owner, what="tune job owner", limit=JOB_OWNER_LENGTH)


def _record(row: TuneJobRow) -> TuneJob:
    return from_row(TuneJob, row)
