"""Prompt experiments in the database: the experiment with its locked spec and input, one result
per model and row, the Gemini batch jobs it submitted, and the response cache.

An experiment is created together with the job that runs it (`core.store.jobs`), in one
transaction. Results are written as they arrive, several at a time, in the transaction that
advances the job's `rows_done` while checking that this process still holds it: a result is
never written twice, and a process that lost its job writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.store import upserts, validation
from core.store.db import execute_dml, read_retried
from core.store.jobs import QUEUED, RUNNING, JobRecord, LeaseLost, job_record
from core.store.records import from_row
from core.store.schema import (
    EXPERIMENT_NAME_LENGTH,
    Experiment,
    ExperimentBatch,
    ExperimentResult,
    GenerationCacheEntry,
    Job,
    utcnow,
)

Sessions = Callable[[], AbstractContextManager[Session]]

# An experiment waits (`pending`, no job yet) while a person decides whether to run it; then it
# runs, and ends done, failed, or cancelled (a pending one nobody confirmed).
PENDING_STATE, RUNNING_STATE = "pending", "running"
DONE_STATE, FAILED_STATE, CANCELLED_STATE = "done", "failed", "cancelled"
EXPERIMENT_STATES = (PENDING_STATE, RUNNING_STATE, DONE_STATE, FAILED_STATE, CANCELLED_STATE)


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment as stored, without its input rows (`ExperimentStore.cases` reads them)."""

    id: int
    team_id: str
    name: str
    spec: dict[str, Any]
    rows: int
    source: str
    origin: str
    created_by: str | None
    job_id: int | None
    rerun_of: int | None
    state: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ResultRecord:
    """One model's result for one row (see `core.store.schema.ExperimentResult`)."""

    model: str
    row_index: int
    prompt: str
    outcome: str
    answer: str
    reason: str | None
    score: float | None
    judge_reason: str | None
    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    judge_input_tokens: int
    judge_output_tokens: int
    latency_ms: float
    cached: bool
    batch: bool


@dataclass(frozen=True)
class CachedReply:
    """A reply kept in the response cache under its request key."""

    key: str
    model: str
    outcome: str
    text: str
    reason: str | None
    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    latency_ms: float


@dataclass(frozen=True)
class BatchRecord:
    """A Gemini batch job submitted for one model of an experiment."""

    experiment_id: int
    model: str
    name: str
    state: str
    rows: tuple[int, ...]
    error: str | None
    submitted_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Grade:
    """The judge's grade of one result given after it was written (a batch's answers)."""

    model: str
    row_index: int
    score: float | None
    judge_reason: str | None
    judge_input_tokens: int
    judge_output_tokens: int


_RESULT_FIELDS = tuple(f.name for f in fields(ResultRecord))
_CACHE_FIELDS = tuple(f.name for f in fields(CachedReply))


class ExperimentStore:
    """The experiment methods of `Store` (`store.experiments`): one transaction each."""

    def __init__(self, sessions: Sessions) -> None:
        self._session = sessions

    def create(
        self,
        team_id: str,
        *,
        name: str,
        spec: Mapping[str, Any],
        cases: Mapping[str, Any],
        rows: int,
        source: str,
        origin: str,
        job_kind: str,
        job_parameters: Mapping[str, Any],
        owner: str | None,
        lease_seconds: float,
        created_by: str | None = None,
        rerun_of: int | None = None,
        pending: bool = False,
    ) -> tuple[ExperimentRecord, JobRecord | None]:
        """A new experiment and the job that runs it (rows × the spec's models requests), together.

        The job is held by `owner` when given (the caller runs it at once), else queued. Its
        parameters get the experiment's id under "experiment". With `pending`, there is no job
        yet: `start` makes it once someone confirms (and `cancel` ends the wait).
        """
        if rows < 1 or not spec.get("models"):
            raise InvalidInput("an experiment needs at least one row and one model")
        now = utcnow()
        team = validation.team_id(team_id)
        with self._session() as s, s.begin():
            row = Experiment(
                team_id=team,
                name=validation.clean(name, what="experiment name", limit=EXPERIMENT_NAME_LENGTH),
                spec=dict(spec),
                cases=dict(cases),
                rows=rows,
                source=validation.clean(source or "input", what="file name", limit=EXPERIMENT_NAME_LENGTH),
                origin=origin,
                created_by=created_by,
                job_id=None,
                rerun_of=rerun_of,
                state=PENDING_STATE,
                error=None,
                created_at=now,
                finished_at=None,
            )
            s.add(row)
            s.flush()
            job = None
            if not pending:
                job = _start(
                    s, row, kind=job_kind, parameters=job_parameters, owner=owner, lease_seconds=lease_seconds
                )
            return _experiment(row), job_record(job) if job is not None else None

    def start(
        self,
        experiment_id: int,
        *,
        job_kind: str,
        job_parameters: Mapping[str, Any],
        owner: str | None,
        lease_seconds: float,
    ) -> JobRecord | None:
        """Make the job of a pending experiment (held by `owner`, else queued); None when it is not
        pending any more (started or cancelled already: a second press of a button does nothing)."""
        with self._session() as s, s.begin():
            claimed = execute_dml(
                s,
                update(Experiment)
                .where(Experiment.id == int(experiment_id), Experiment.state == PENDING_STATE)
                .values(state=RUNNING_STATE),
            )
            if claimed.rowcount != 1:
                return None
            row = s.get(Experiment, int(experiment_id))
            assert row is not None
            job = _start(
                s, row, kind=job_kind, parameters=job_parameters, owner=owner, lease_seconds=lease_seconds
            )
            return job_record(job)

    def cancel_stale(self, older_than: datetime) -> int:
        """Cancel the experiments still waiting for a confirmation that were created before
        `older_than` (nobody pressed either button); returns how many."""
        with self._session() as s, s.begin():
            result = execute_dml(
                s,
                update(Experiment)
                .where(Experiment.state == PENDING_STATE, Experiment.created_at < older_than)
                .values(state=CANCELLED_STATE, finished_at=utcnow()),
            )
            return int(result.rowcount or 0)

    def cancel(self, experiment_id: int) -> bool:
        """End a pending experiment unrun; False when it is not pending (started, or ended)."""
        with self._session() as s, s.begin():
            result = execute_dml(
                s,
                update(Experiment)
                .where(Experiment.id == int(experiment_id), Experiment.state == PENDING_STATE)
                .values(state=CANCELLED_STATE, finished_at=utcnow()),
            )
            return result.rowcount == 1

    @read_retried
    def get(self, experiment_id: int, *, team_id: str | None = None) -> ExperimentRecord:
        """One experiment (of `team_id`, when given); NotFound when there is none."""
        with self._session() as s, s.begin():
            row = s.get(Experiment, int(experiment_id))
            if row is None or (team_id is not None and row.team_id != team_id.strip()):
                raise NotFound(f"there is no experiment #{experiment_id}")
            return _experiment(row)

    @read_retried
    def find(self, *, team_id: str | None = None, limit: int = 50) -> list[ExperimentRecord]:
        """The newest experiments first (of one workspace, when given)."""
        query = select(Experiment).order_by(Experiment.id.desc()).limit(limit)
        if team_id is not None:
            query = query.where(Experiment.team_id == team_id.strip())
        with self._session() as s, s.begin():
            return [_experiment(row) for row in s.scalars(query)]

    @read_retried
    def cases(self, experiment_id: int) -> dict[str, Any]:
        """The input table stored with the experiment (`core.experiments.cases.Cases.to_json`)."""
        with self._session() as s, s.begin():
            found = s.scalar(select(Experiment.cases).where(Experiment.id == int(experiment_id)))
            if found is None:
                raise NotFound(f"there is no experiment #{experiment_id}")
            return dict(found)

    @read_retried
    def done(self, experiment_id: int) -> set[tuple[str, int]]:
        """The (model, row) pairs that already have a result."""
        with self._session() as s, s.begin():
            query = select(ExperimentResult.model, ExperimentResult.row_index).where(
                ExperimentResult.experiment_id == int(experiment_id)
            )
            return {(model, int(index)) for model, index in s.execute(query)}

    def record(
        self,
        experiment_id: int,
        results: Sequence[ResultRecord],
        *,
        job_id: int,
        owner: str,
        lease_seconds: float,
    ) -> int:
        """Keep `results` and set the job's `rows_done` to the experiment's count; returns it.

        One transaction. A result already on record is left as it was (a row redone after a
        crash). LeaseLost when `owner` no longer holds the job: nothing is written.
        """
        now = utcnow()
        with self._session() as s, s.begin():
            _hold(s, job_id, owner=owner, lease_seconds=lease_seconds, now=now)
            if results:
                statement = upserts.insert(s, ExperimentResult, needs="experiments need")
                s.execute(
                    statement.on_conflict_do_nothing(),
                    [
                        {"experiment_id": experiment_id, "created_at": now, **_values(r, _RESULT_FIELDS)}
                        for r in results
                    ],
                )
            count = int(
                s.scalar(select(func.count()).where(ExperimentResult.experiment_id == experiment_id)) or 0
            )
            execute_dml(s, update(Job).where(Job.id == job_id).values(rows_done=count))
            return count

    def grade(
        self, experiment_id: int, grades: Sequence[Grade], *, job_id: int, owner: str, lease_seconds: float
    ) -> None:
        """Give results on record their grades, in one transaction that renews the job's lease; a
        result graded already keeps its grade. LeaseLost when `owner` no longer holds the job."""
        with self._session() as s, s.begin():
            _hold(s, job_id, owner=owner, lease_seconds=lease_seconds, now=utcnow())
            for g in grades:
                execute_dml(
                    s,
                    update(ExperimentResult)
                    .where(
                        ExperimentResult.experiment_id == experiment_id,
                        ExperimentResult.model == g.model,
                        ExperimentResult.row_index == g.row_index,
                        ExperimentResult.score.is_(None),
                        ExperimentResult.judge_reason.is_(None),
                    )
                    .values(
                        score=g.score,
                        judge_reason=g.judge_reason,
                        judge_input_tokens=g.judge_input_tokens,
                        judge_output_tokens=g.judge_output_tokens,
                    ),
                )

    @read_retried
    def results(self, experiment_id: int) -> list[ResultRecord]:
        """Every result of the experiment, by model then row."""
        with self._session() as s, s.begin():
            rows = s.scalars(
                select(ExperimentResult)
                .where(ExperimentResult.experiment_id == int(experiment_id))
                .order_by(ExperimentResult.model, ExperimentResult.row_index)
            )
            return [from_row(ResultRecord, row) for row in rows]

    def finish(self, experiment_id: int, *, state: str, error: str | None = None) -> None:
        """Mark the experiment done or failed (with a sentence saying why)."""
        if state not in (DONE_STATE, FAILED_STATE):
            raise InvalidInput(f"an experiment ends done or failed, not {state!r}")
        with self._session() as s, s.begin():
            execute_dml(
                s,
                update(Experiment)
                .where(Experiment.id == int(experiment_id))
                .values(state=state, error=error[:2000] if error else None, finished_at=utcnow()),
            )

    # -- the response cache ----------------------------------------------------------------------

    @read_retried
    def cached(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        """The cached replies among `keys`."""
        wanted = sorted(set(keys))
        found: dict[str, CachedReply] = {}
        with self._session() as s, s.begin():
            # Chunked: SQLite allows a bounded number of parameters in one statement.
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for row in s.scalars(select(GenerationCacheEntry).where(GenerationCacheEntry.key.in_(chunk))):
                    found[row.key] = from_row(CachedReply, row)
        return found

    def cache(self, replies: Sequence[CachedReply]) -> None:
        """Keep `replies` in the response cache; a key already there keeps its first reply."""
        if not replies:
            return
        now = utcnow()
        with self._session() as s, s.begin():
            statement = upserts.insert(s, GenerationCacheEntry, needs="the response cache needs")
            s.execute(
                statement.on_conflict_do_nothing(),
                [{"created_at": now, **_values(r, _CACHE_FIELDS)} for r in replies],
            )

    def prune_cache(self, older_than: datetime) -> int:
        """Forget cached replies written before `older_than`; returns how many."""
        with self._session() as s, s.begin():
            result = execute_dml(
                s, delete(GenerationCacheEntry).where(GenerationCacheEntry.created_at < older_than)
            )
            return int(result.rowcount or 0)

    # -- batch jobs ------------------------------------------------------------------------------

    @read_retried
    def batches(self, experiment_id: int) -> list[BatchRecord]:
        """The batch jobs submitted for the experiment, by model."""
        with self._session() as s, s.begin():
            rows = s.scalars(
                select(ExperimentBatch)
                .where(ExperimentBatch.experiment_id == int(experiment_id))
                .order_by(ExperimentBatch.model)
            )
            return [from_row(BatchRecord, row, rows=tuple(int(i) for i in row.rows)) for row in rows]

    def save_batch(self, batch: BatchRecord) -> None:
        """Keep a batch job (a new one, or a new state of one already kept)."""
        values = {
            "experiment_id": batch.experiment_id,
            "model": batch.model,
            "name": batch.name,
            "state": batch.state,
            "rows": list(batch.rows),
            "error": batch.error,
            "submitted_at": batch.submitted_at,
            "updated_at": batch.updated_at,
        }
        with self._session() as s, s.begin():
            statement = upserts.insert(s, ExperimentBatch, needs="batch experiments need")
            s.execute(
                statement.on_conflict_do_update(
                    index_elements=["experiment_id", "model"],
                    set_={k: statement.excluded[k] for k in ("name", "state", "rows", "error", "updated_at")},
                ),
                [values],
            )


def _start(
    s: Session,
    experiment: Experiment,
    *,
    kind: str,
    parameters: Mapping[str, Any],
    owner: str | None,
    lease_seconds: float,
) -> Job:
    """The job that runs `experiment` (rows × models requests), added in session `s`."""
    now = utcnow()
    job = Job(
        team_id=experiment.team_id,
        kind=kind,
        state=RUNNING if owner else QUEUED,
        input=b"",
        parameters={**dict(parameters), "experiment": experiment.id},
        rows_total=experiment.rows * len(experiment.spec["models"]),
        rows_done=0,
        owner=owner,
        lease_expires_at=now + timedelta(seconds=lease_seconds) if owner else None,
        attempts=1 if owner else 0,
        created_at=now,
        updated_at=now,
    )
    s.add(job)
    s.flush()
    experiment.job_id = job.id
    experiment.state = RUNNING_STATE
    s.flush()
    return job


def _hold(s: Session, job_id: int, *, owner: str, lease_seconds: float, now: datetime) -> None:
    """Renew `owner`'s lease on the job in this transaction (which locks its row until the commit),
    or raise LeaseLost when another process holds it now: the caller then writes nothing."""
    renewed = execute_dml(
        s,
        update(Job)
        .where(Job.id == job_id, Job.owner == owner, Job.state == RUNNING)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now),
    )
    if renewed.rowcount != 1:
        raise LeaseLost(f"job #{job_id} is no longer held by this process")


def _values(record: object, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _experiment(row: Experiment) -> ExperimentRecord:
    return from_row(ExperimentRecord, row, spec=dict(row.spec))
