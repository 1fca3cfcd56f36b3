"""Bulk jobs in the database: the input, the progress, the finished rows, and who is working on it.

A job is `queued` (nobody holds it), `running` (one process holds its lease), `done` or `failed`.
Every change of hands is one conditional UPDATE, so the database decides races: a process takes
a job only while it is queued or its lease has lapsed, and records a batch only while it still
holds the lease and `rows_done` is where it left it. A batch's rows, its classification log
entries and the new `rows_done` commit together, so a crash loses no finished row and a resumed
job never writes one twice.

Leases are timestamps from the clock of the process that writes them: keep the hosts' clocks in
sync (NTP), well within the lease length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.store import audit, validation
from core.store.audit import LoggedResult
from core.store.db import execute_dml, read_retried
from core.store.records import from_row
from core.store.schema import JOB_KIND_LENGTH, JOB_OWNER_LENGTH, Job, JobRow, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)
FINISHED = (DONE, FAILED)


class LeaseLost(Exception):
    """This process no longer holds the job: another one took it over (its lease had lapsed)."""


@dataclass(frozen=True)
class JobRecord:
    """A job as stored. `input` is bytes (UTF-8 text for a CSV); `parameters` is plain JSON."""

    id: int
    team_id: str
    kind: str
    state: str
    input: bytes = field(repr=False)
    parameters: dict[str, Any]
    rows_total: int
    rows_done: int
    error: str | None
    owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    created_at: datetime
    updated_at: datetime

    @property
    def text(self) -> str:
        return self.input.decode("utf-8")


@dataclass(frozen=True)
class ClassificationLog:
    """Classification log entries to write with a batch: what, for which set, by whom, from where."""

    team_id: str
    set_name: str
    user_id: str | None
    source: str
    results: Sequence[LoggedResult]


Sessions = Callable[[], AbstractContextManager[Session]]


class JobStore:
    """The job methods of `Store` (`store.jobs`): one transaction each, plain values in and out."""

    def __init__(self, sessions: Sessions) -> None:
        self._session = sessions

    def create(
        self,
        team_id: str,
        *,
        kind: str,
        input: bytes | str,
        rows_total: int,
        parameters: Mapping[str, Any],
        owner: str | None = None,
        lease_seconds: float = 60.0,
    ) -> JobRecord:
        """A new job: held by `owner` (running, attempt 1) when given, else queued for any process."""
        if rows_total < 0:
            raise InvalidInput("a job cannot have a negative number of rows")
        now = utcnow()
        row = Job(
            team_id=validation.team_id(team_id),
            kind=validation.clean(kind, what="job kind", limit=JOB_KIND_LENGTH),
            state=RUNNING if owner else QUEUED,
            input=input.encode("utf-8") if isinstance(input, str) else bytes(input),
            parameters=dict(parameters),
            rows_total=int(rows_total),
            rows_done=0,
            owner=_owner(owner) if owner else None,
            lease_expires_at=now + timedelta(seconds=lease_seconds) if owner else None,
            attempts=1 if owner else 0,
            created_at=now,
            updated_at=now,
        )
        with self._session() as s, s.begin():
            s.add(row)
            s.flush()
            return job_record(row)

    @read_retried
    def get(self, job_id: int) -> JobRecord:
        """One job by id (NotFound when there is none)."""
        with self._session() as s, s.begin():
            row = s.get(Job, int(job_id))
            if row is None:
                raise NotFound(f"there is no job #{job_id}")
            return job_record(row)

    @read_retried
    def find(self, *, team_id: str | None = None, states: Iterable[str] = ()) -> list[JobRecord]:
        """Jobs, oldest first, of one workspace and/or in the given states (all by default)."""
        query = select(Job).order_by(Job.id)
        if team_id is not None:
            query = query.where(Job.team_id == team_id.strip())
        wanted = list(states)
        if wanted:
            query = query.where(Job.state.in_(wanted))
        with self._session() as s, s.begin():
            return [job_record(row) for row in s.scalars(query)]

    @read_retried
    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (for monitoring); states with none are 0."""
        with self._session() as s, s.begin():
            found = {state: n for state, n in s.execute(select(Job.state, func.count()).group_by(Job.state))}
        return {state: int(found.get(state, 0)) for state in STATES}

    def claim(
        self,
        *,
        owner: str,
        lease_seconds: float,
        limit: int = 1,
        kinds: Iterable[str] | None = None,
        job_id: int | None = None,
    ) -> list[JobRecord]:
        """Take up to `limit` jobs that are queued or whose lease has lapsed, oldest first; only
        of `kinds` when given (a process takes only the jobs it knows how to run), only `job_id`
        when given (the command line resuming one experiment).

        Each one is taken by a conditional UPDATE: when two processes race for a job, one gets it.
        """
        owner = _owner(owner)
        now = utcnow()
        waiting = or_(
            Job.state == QUEUED,
            and_(Job.state == RUNNING, or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)),
        )
        if kinds is not None:
            waiting = and_(waiting, Job.kind.in_(list(kinds)))
        if job_id is not None:
            waiting = and_(waiting, Job.id == int(job_id))
        taken: list[JobRecord] = []
        with self._session() as s, s.begin():
            candidates = list(s.scalars(select(Job.id).where(waiting).order_by(Job.id).limit(limit * 4)))
        for job_id in candidates:
            if len(taken) >= limit:
                break
            with self._session() as s, s.begin():
                result = execute_dml(
                    s,
                    update(Job)
                    .where(Job.id == job_id, waiting)
                    .values(
                        state=RUNNING,
                        owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        attempts=Job.attempts + 1,
                        updated_at=now,
                    ),
                )
                if result.rowcount == 1:
                    row = s.get(Job, job_id)
                    assert row is not None
                    taken.append(job_record(row))
        return taken

    def heartbeat(self, job_ids: Iterable[int], *, owner: str, lease_seconds: float) -> int:
        """Renew the lease on those of `job_ids` that `owner` still holds; returns how many."""
        ids = [int(i) for i in job_ids]
        if not ids:
            return 0
        now = utcnow()
        with self._session() as s, s.begin():
            result = execute_dml(
                s,
                update(Job)
                .where(Job.id.in_(ids), Job.owner == owner, Job.state == RUNNING)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now),
            )
            return int(result.rowcount or 0)

    def record_batch(
        self,
        job_id: int,
        *,
        owner: str,
        start: int,
        outputs: Sequence[Mapping[str, Any]],
        lease_seconds: float,
        log: ClassificationLog | None = None,
    ) -> int:
        """Keep the outputs of rows `start`, `start + 1`, … and advance `rows_done`; returns it.

        One transaction: the rows, the log entries and the new count commit together or not at
        all. LeaseLost when `owner` no longer holds the job or its count is not at `start` (the
        batch was already recorded by whoever holds it now).
        """
        entries = (
            audit.rows(
                team_id=log.team_id,
                set_name=log.set_name,
                user_id=log.user_id,
                source=log.source,
                results=log.results,
            )
            if log is not None
            else []
        )
        now = utcnow()
        end = start + len(outputs)
        with self._session() as s, s.begin():
            result = execute_dml(
                s,
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.owner == owner,
                    Job.state == RUNNING,
                    Job.rows_done == start,
                    Job.rows_total >= end,
                )
                .values(
                    rows_done=end,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                ),
            )
            if result.rowcount != 1:
                raise LeaseLost(f"job #{job_id} is no longer held by this process at row {start}")
            s.add_all(
                JobRow(job_id=job_id, row_index=start + n, output=dict(output))
                for n, output in enumerate(outputs)
            )
            s.add_all(entries)
        return end

    @read_retried
    def outputs(self, job_id: int) -> list[dict[str, Any]]:
        """The recorded outputs of a job's rows, in row order."""
        with self._session() as s, s.begin():
            return [
                dict(output)
                for output in s.scalars(
                    select(JobRow.output).where(JobRow.job_id == job_id).order_by(JobRow.row_index)
                )
            ]

    def release(self, job_id: int, *, owner: str) -> bool:
        """Give a job back (queued, nobody's) with its progress, for any process to carry on at once."""
        return self._change(job_id, owner=owner, state=QUEUED, keep_owner=False)

    def finish(self, job_id: int, *, owner: str) -> bool:
        """Mark a job that `owner` holds as done; False when it no longer holds it."""
        return self._change(job_id, owner=owner, state=DONE, keep_owner=True)

    def fail(self, job_id: int, *, error: str, owner: str | None = None) -> bool:
        """Mark a job failed with a sentence saying why (only if `owner` holds it, when given)."""
        return self._change(job_id, owner=owner, state=FAILED, keep_owner=True, error=error[:2000])

    def prune(self, older_than: datetime) -> int:
        """Delete finished (done or failed) jobs last changed before `older_than`; returns how many."""
        if older_than.tzinfo is None:
            raise InvalidInput("prune needs a timezone-aware datetime")
        with self._session() as s, s.begin():
            result = execute_dml(s, delete(Job).where(Job.state.in_(FINISHED), Job.updated_at < older_than))
            return int(result.rowcount or 0)

    def _change(
        self, job_id: int, *, owner: str | None, state: str, keep_owner: bool, error: str | None = None
    ) -> bool:
        condition = [Job.id == job_id, Job.state.not_in(FINISHED)]
        if owner is not None:
            condition += [Job.owner == owner, Job.state == RUNNING]
        values: dict[str, Any] = {"state": state, "updated_at": utcnow(), "lease_expires_at": None}
        if not keep_owner:
            values["owner"] = None
        if error is not None:
            values["error"] = error
        with self._session() as s, s.begin():
            return execute_dml(s, update(Job).where(*condition).values(**values)).rowcount == 1


def _owner(owner: str) -> str:
    return validation.clean(owner, what="job owner", limit=JOB_OWNER_LENGTH)


def job_record(row: Job) -> JobRecord:
    return from_row(JobRecord, row, input=bytes(row.input), parameters=dict(row.parameters))
