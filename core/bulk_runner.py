"""Bulk jobs that survive a restart: a CSV classification kept in the database with its progress.

A `JobRunner` (one per process) creates a job, classifies its rows in batches, and records each
batch (outputs, classification log, `rows_done`) in one transaction, renewing its lease as it
goes. When the process stops, `stop()` makes every running job give itself back after its
current batch, progress kept; a process that dies simply stops renewing, and its lease lapses.
Either way another process `claim`s the job and carries on from `rows_done`: no finished row is
classified twice, and none is lost.

Nothing here knows Slack: progress goes to a callback, and the caller delivers the result.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.csv_tables import TextTable, parse_text_table
from core.errors import DatabaseUnavailable, GembotError
from core.store import ClassificationLog, JobRecord, LeaseLost, Store

if TYPE_CHECKING:
    from core.classify import Prediction
    from core.engine import Engine

log = logging.getLogger(__name__)

KIND_CLASSIFY_CSV = "classify_csv"
# A job taken on this many times without finishing (its process died each time) is given up.
MAX_ATTEMPTS = 5

__all__ = [
    "KIND_CLASSIFY_CSV",
    "MAX_ATTEMPTS",
    "CsvJob",
    "CsvResult",
    "JobGaveUp",
    "JobInterrupted",
    "JobRunner",
    "LeaseLost",
    "owner_id",
]

Progress = Callable[[int, int], None]


class JobInterrupted(Exception):
    """The job was given back with its progress, for this process or another to resume: the process
    is stopping, or (`database_lost`) the database went away under it."""

    def __init__(self, rows_done: int, rows_total: int, *, database_lost: bool = False) -> None:
        super().__init__(f"stopped at row {rows_done} of {rows_total}")
        self.rows_done = rows_done
        self.rows_total = rows_total
        self.database_lost = database_lost


class JobGaveUp(GembotError):
    """A job whose process kept stopping before it finished."""


@dataclass(frozen=True)
class CsvJob:
    """What classifying a CSV needs besides the file: kept in the job's `parameters`.

    `labels` are the set's labels when the job started (the result's score columns, in order);
    `batch` is how many rows are classified, and recorded, at a time.
    """

    set_name: str
    file_name: str
    user_id: str | None
    labels: tuple[str, ...]
    batch: int = 100
    method: str = "auto"
    source: str = "slack-csv"

    def parameters(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "file_name": self.file_name,
            "user": self.user_id,
            "labels": list(self.labels),
            "batch": self.batch,
            "method": self.method,
            "source": self.source,
        }

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> CsvJob:
        return cls(
            set_name=str(parameters["set"]),
            file_name=str(parameters.get("file_name") or "the CSV file"),
            user_id=parameters.get("user"),
            labels=tuple(str(x) for x in parameters.get("labels") or ()),
            batch=max(1, int(parameters.get("batch") or 100)),
            method=str(parameters.get("method") or "auto"),
            source=str(parameters.get("source") or "slack-csv"),
        )


@dataclass(frozen=True)
class CsvResult:
    """A finished classification: the table, one prediction per row, and the labels to show."""

    table: TextTable
    predictions: list[Prediction]
    labels: list[str]


def owner_id() -> str:
    """A name for this process that no other process (here or on another host) shares."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    """Creates, claims, runs and renews this process's jobs; `stop()` winds them down.

    Thread-safe: every lazy listener of a process shares one runner.
    """

    def __init__(self, store: Store, *, lease_seconds: float = 60.0, owner: str | None = None) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.owner = owner or owner_id()
        self._stopping = threading.Event()
        self._active: set[int] = set()
        self._lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Make every job this process runs give itself back after its current batch; claim no more."""
        self._stopping.set()

    @property
    def active(self) -> int:
        """How many jobs this process is running now."""
        with self._lock:
            return len(self._active)

    def create(
        self, team_id: str, *, kind: str, content: str | bytes, rows_total: int, parameters: Mapping[str, Any]
    ) -> JobRecord:
        """A new job, held by this process (the caller runs it straight away)."""
        return self.store.jobs.create(
            team_id,
            kind=kind,
            input=content,
            rows_total=rows_total,
            parameters=parameters,
            owner=self.owner,
            lease_seconds=self.lease_seconds,
        )

    def claim(self, *, limit: int = 1, kinds: Iterable[str] | None = None) -> list[JobRecord]:
        """Take over up to `limit` jobs (of `kinds`, when given) that nobody holds (queued, or a
        lapsed lease); none once stopping."""
        if self.stopping or limit < 1:
            return []
        lease = self.lease_seconds
        return self.store.jobs.claim(owner=self.owner, lease_seconds=lease, limit=limit, kinds=kinds)

    def heartbeat(self) -> int:
        """Renew the lease of the jobs this process is running; returns how many still are its own."""
        with self._lock:
            ids = list(self._active)
        return self.store.jobs.heartbeat(ids, owner=self.owner, lease_seconds=self.lease_seconds)

    def finish(self, job: JobRecord) -> bool:
        """Mark a job done once its result is delivered."""
        return self.store.jobs.finish(job.id, owner=self.owner)

    def fail(self, job: JobRecord, error: str) -> None:
        """Mark a job failed, saying why; a database that is down leaves it for its lease to lapse."""
        try:
            self.store.jobs.fail(job.id, error=error, owner=self.owner)
        except GembotError as exc:
            log.warning("could not mark job #%d failed (%s): it will be resumed instead", job.id, exc)

    # -- classifying a CSV --------------------------------------------------------------------

    def classify_csv(self, job: JobRecord, *, engine: Engine, progress: Progress | None = None) -> CsvResult:
        """Classify the rows of `job` not yet done, batch by batch, and return every row's prediction.

        `progress(rows_done, rows_total)` is called after each batch. JobInterrupted when the
        runner is stopping or the database went away (the job is queued again with its
        progress); LeaseLost when another process took the job over; JobGaveUp after
        MAX_ATTEMPTS tries; whatever the engine raises otherwise (the job is left as it is: the
        caller marks it failed).
        """
        params = CsvJob.of(job.parameters)
        with self._running(job):
            if job.attempts > MAX_ATTEMPTS:
                raise JobGaveUp(
                    f"classifying {params.file_name} was interrupted {MAX_ATTEMPTS} times before it "
                    "could finish, so I gave up on it: send the file again"
                )
            table = parse_text_table(job.text, filename=params.file_name)
            texts, total, done = table.texts, job.rows_total, job.rows_done
            if len(texts) != total:
                raise JobGaveUp(f"{params.file_name} no longer reads as {total:,} rows")
            try:
                while done < total:
                    if self.stopping:
                        self.store.jobs.release(job.id, owner=self.owner)
                        raise JobInterrupted(done, total)
                    batch = texts[done : done + params.batch]
                    done = self._classify_batch(job, params, batch, start=done, engine=engine)
                    if progress is not None:
                        progress(done, total)
                outputs = self.store.jobs.outputs(job.id)
            except DatabaseUnavailable as exc:
                # A PostgreSQL restart, say: the job waits for the database, its progress kept. A
                # batch whose COMMIT went through is not redone (`rows_done` says so), and one
                # whose COMMIT did not is redone in full.
                self._release_quietly(job)
                raise JobInterrupted(done, total, database_lost=True) from exc
        if len(outputs) != total:
            raise JobGaveUp(f"job #{job.id} has {len(outputs)} of its {total} rows on record")
        found = [_prediction(o) for o in outputs]
        labels = list(params.labels)
        # A set changed while the file was classified may have brought a label the first model lacked.
        for p in found:
            labels += [label for label in p.scores if label not in labels]
        return CsvResult(table=table, predictions=found, labels=labels)

    def _classify_batch(
        self, job: JobRecord, params: CsvJob, batch: list[str], *, start: int, engine: Engine
    ) -> int:
        # The classification log is written with the batch, in its transaction, rather than by
        # the engine: a batch redone after a crash is then logged once.
        # A job's unsure rows stay unsure: a CSV of thousands of rows would otherwise send hundreds
        # of Gemini calls from a background thread, one at a time, on whoever sent it.
        predictions = engine.classify(
            job.team_id, params.set_name, batch, method=params.method, log=False, escalate=False
        )
        return self.store.jobs.record_batch(
            job.id,
            owner=self.owner,
            start=start,
            outputs=[_output(p) for p in predictions],
            lease_seconds=self.lease_seconds,
            log=ClassificationLog(
                team_id=job.team_id,
                set_name=params.set_name,
                user_id=params.user_id,
                source=params.source,
                results=[
                    (text, p.label, p.confidence, p.method, p.scores)
                    for text, p in zip(batch, predictions, strict=True)
                ],
            ),
        )

    def _release_quietly(self, job: JobRecord) -> None:
        try:
            self.store.jobs.release(job.id, owner=self.owner)
        except GembotError as exc:
            log.info("job #%d stays with this process until its lease lapses (%s)", job.id, exc)

    @contextmanager
    def _running(self, job: JobRecord) -> Iterator[None]:
        with self._lock:
            self._active.add(job.id)
        try:
            yield
        finally:
            with self._lock:
                self._active.discard(job.id)


def _output(p: Prediction) -> dict[str, Any]:
    return {
        "label": p.label,
        "best_label": p.best_label,
        "confidence": float(p.confidence),
        "scores": {str(k): float(v) for k, v in p.scores.items()},
        "probabilities": {str(k): float(v) for k, v in p.probabilities.items()},
        "method": p.method,
        "abstained": bool(p.abstained),
        "reason": p.reason,
    }


def _prediction(output: Mapping[str, Any]) -> Prediction:
    from core.classify import Prediction  # scikit-learn: imported when a result is read back

    return Prediction(
        label=output.get("label"),
        best_label=str(output["best_label"]),
        confidence=float(output["confidence"]),
        scores={str(k): float(v) for k, v in (output.get("scores") or {}).items()},
        probabilities={str(k): float(v) for k, v in (output.get("probabilities") or {}).items()},
        method=str(output.get("method") or ""),
        abstained=bool(output.get("abstained")),
        reason=output.get("reason"),
    )
