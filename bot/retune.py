"""Re-tuning label sets: `TuneJobs` sees one due tune job through, for the `bot.background.Retuner` round.

A tuned set is tuned again once its edits have settled, and any set once `/label tune` asks for it
(the store's tune jobs: `core.store.tuned_encoders`). Each round of the retuner, when GEMBOT_RETUNE
is on, `TuneJobs.take_one` claims one due job and runs `Engine.tune` on a thread of its own while
the round's thread renews the job's lease; then it finishes the job, or gives it back to be tried
again after GEMBOT_RETUNE_SETTLE seconds, and after MAX_ATTEMPTS failures gives it up. A set gone
meanwhile, or one that cannot be tuned as it is (fewer than two labels), is dropped: its next edit
asks again.

- One tune at a time per process: a tune takes minutes of every core. Across processes the lease
  keeps a set to one tune; a process that dies leaves its job to whoever claims it once the lease
  lapses, and a job taken more than MAX_ATTEMPTS times is given up at once.
- A stop does not wait for a tune: the round returns, the tune is abandoned at its next training
  step (the daemon thread ends there), and its lease lapses for another process to redo it.
- A lease lost while tuning (the heartbeat could not renew it in time, and another process took
  the job) leaves the job to its new holder: this tune ends without finishing it or telling anyone.
- Whoever asked with `/label tune` (`job.requested_by`) gets a DM with the verdict
  (`handlers.tune_notices`); re-tunes that edits asked for tell nobody.
- The last tuned weights keep serving while a tune runs; the engine switches when it keeps new ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Protocol

from slack_sdk import WebClient

from core import daily_limits
from core.errors import GembotError, InvalidInput, NotEnoughLabels, NotFound
from core.store import TuneJob
from handlers import tune_notices
from handlers.deps import Deps

if TYPE_CHECKING:
    from core.engine import TuneOutcome

log = logging.getLogger(__name__)

#: How long a claimed tune job is held without a heartbeat, and how often the heartbeat renews it.
LEASE_SECONDS = 120.0
RENEW_EVERY = 30.0
#: Takings of a job (failed, or died with their process) before it is given up.
MAX_ATTEMPTS = 3
#: How often the round's thread looks up from a running tune (to renew, or to stop).
_POLL = 0.1
#: Never two tunes at once in one process, however many retuners it has.
_ONE_TUNE = threading.Lock()

#: How background work for a workspace (its store key, `TEAM` or `ENTERPRISE:TEAM`) reaches Slack.
WorkspaceClientFor = Callable[[str], WebClient | None]
Progress = Callable[[int, int], None]


class Tuner(Protocol):
    """What tunes a set: `core.engine.Engine` (`Engine.tune`)."""

    def tune(
        self, team_id: str, set_name: str, *, kind: str | None = None, progress: Progress | None = None
    ) -> TuneOutcome: ...


class Abandoned(Exception):
    """Raised inside a tune at its next step once the process stops: nobody waits for it."""


class _Attempt:
    """One tune on its own daemon thread: its outcome or its failure, and a way to abandon it."""

    def __init__(self, work: Callable[[Progress], TuneOutcome], *, name: str) -> None:
        self._work = work
        self.done = threading.Event()
        self.outcome: TuneOutcome | None = None
        self.error: BaseException | None = None
        self._abandoned = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def abandon(self) -> None:
        self._abandoned.set()

    @property
    def abandoned(self) -> bool:
        return self._abandoned.is_set()

    def _progress(self, step: int, steps: int) -> None:
        if self._abandoned.is_set():
            raise Abandoned("the process is stopping")

    def _run(self) -> None:
        try:
            self.outcome = self._work(self._progress)
        except BaseException as exc:
            self.error = exc
            if self.abandoned:
                # Whatever it met (the store closed under it, say) nobody is waiting for.
                log.info("an abandoned tune ended: %s", type(exc).__name__)
        finally:
            self.done.set()
            _ONE_TUNE.release()


@dataclass
class TuneJobs:
    """Claims due tune jobs and sees each through, one at a time per process (see the module doc).

    `tuner` is the engine (None: `deps.engine`, built when the first job comes); `client_for`
    how a DM to a requester reaches their workspace; `lease_seconds`, `renew_every` and
    `max_attempts` a job's lease and the patience with it.
    """

    deps: Deps
    _: KW_ONLY
    client_for: WorkspaceClientFor
    tuner: Tuner | None = None
    lease_seconds: float = LEASE_SECONDS
    renew_every: float = RENEW_EVERY
    max_attempts: int = MAX_ATTEMPTS

    @property
    def owner(self) -> str:
        """The name this process's bulk jobs are held under: one name per process in the log."""
        return self.deps.jobs.owner

    def take_one(self, *, stopping: threading.Event) -> int:
        """Claim one due job and see it through, abandoning its tune once `stopping` is set; returns
        1 when one was taken, else 0 (none due, or a tune of this process still running)."""
        if not _ONE_TUNE.acquire(blocking=False):
            return 0  # a tune is running (or an abandoned one is still winding down)
        started = False
        try:
            job = self.deps.store.claim_tune(
                owner=self.owner,
                settle_seconds=self.deps.settings.retune_settle_seconds,
                lease_seconds=self.lease_seconds,
            )
            if job is None:
                return 0
            if job.attempts > self.max_attempts:
                # Its earlier holders died mid-tune (a tune that kills its process, say).
                self._give_up(job, None, attempts=job.attempts - 1)
                return 1
            attempt = self._start(job)
            started = True
        finally:
            if not started:
                _ONE_TUNE.release()
        self._see_through(job, attempt, stopping)
        return 1

    # -- one job ----------------------------------------------------------------------------

    def _start(self, job: TuneJob) -> _Attempt:
        store = self.deps.store
        # A set tuned before is tuned the same way again (an adapter stays an adapter).
        before = store.tuned_encoder(job.team_id, job.set_name)
        kind = before.kind if before is not None else None
        actor = daily_limits.Actor(job.team_id, job.requested_by)

        def work(progress: Progress) -> TuneOutcome:
            # Built here, so that an engine that cannot be built fails the job like a failed tune.
            tuner = self.tuner if self.tuner is not None else self.deps.engine
            # Gemini embeddings the tune needs count against the workspace (and the requester).
            with daily_limits.acting_for(self.deps.meter, actor):
                try:
                    return tuner.tune(job.team_id, job.set_name, kind=kind, progress=progress)
                except InvalidInput:
                    if kind is None:
                        raise
                    # The embedder changed since (Gemini's cannot be fine-tuned): the default kind.
                    return tuner.tune(job.team_id, job.set_name, progress=progress)

        log.info("tuning label set %r of %s (attempt %d)", job.set_name, job.team_id, job.attempts)
        attempt = _Attempt(work, name="gembot-retuner-tune")
        attempt.start()
        return attempt

    def _see_through(self, job: TuneJob, attempt: _Attempt, stopping: threading.Event) -> None:
        """Renew the lease until the tune ends, then finish, fail or drop the job."""
        held = True
        renew_at = time.monotonic() + self.renew_every
        while not attempt.done.wait(timeout=min(_POLL, self.renew_every)):
            if stopping.is_set():
                attempt.abandon()
                log.info(
                    "stopping: the tune of label set %r is abandoned; once its lease lapses another "
                    "process tunes it",
                    job.set_name,
                )
                return
            if held and time.monotonic() >= renew_at:
                held = self._renew(job)
                renew_at = time.monotonic() + self.renew_every
        if not held:
            return
        if attempt.error is None:
            assert attempt.outcome is not None
            self._finish(job, attempt.outcome)
        elif isinstance(attempt.error, NotFound | NotEnoughLabels | InvalidInput):
            self._drop(job, attempt.error)
        else:
            self._fail(job, attempt.error)

    def _renew(self, job: TuneJob) -> bool:
        try:
            held = self.deps.store.renew_tune(job, owner=self.owner, lease_seconds=self.lease_seconds)
        except GembotError as exc:
            # The database away for a moment: the lease outlasts a few missed renewals.
            log.warning("could not renew the lease on the tune of label set %r: %s", job.set_name, exc)
            return True
        if not held:
            log.warning(
                "lost the lease on the tune of label set %r to another process: this tune runs to its "
                "end, but its holder now finishes the job",
                job.set_name,
            )
        return held

    def _finish(self, job: TuneJob, outcome: TuneOutcome) -> None:
        verdict = outcome.verdict
        done = self.deps.store.finish_tune(job, owner=self.owner)
        log.info(
            "tuned label set %r of %s: %.1f%% vs %.1f%% plain on %d held-out examples, %s%s",
            job.set_name,
            job.team_id,
            100 * verdict.tuned_accuracy,
            100 * verdict.plain_accuracy,
            verdict.held_out,
            "kept" if outcome.kept else "not kept",
            "" if done else " (asked for again meanwhile: it is tuned again once settled)",
        )
        # Asked again meanwhile (an edit): the requester hears when that tune is done.
        if done:
            self._tell(job, tune_notices.outcome_line(job.set_name, outcome))

    def _drop(self, job: TuneJob, exc: BaseException) -> None:
        done = self.deps.store.finish_tune(job, owner=self.owner)
        log.info("dropped the tune of label set %r of %s: %s", job.set_name, job.team_id, exc)
        if done and not isinstance(exc, NotFound):
            self._tell(job, tune_notices.cannot_line(job.set_name, exc))

    def _fail(self, job: TuneJob, exc: BaseException) -> None:
        if isinstance(exc, GembotError):
            log.warning("the tune of label set %r of %s failed: %s", job.set_name, job.team_id, exc)
        else:
            log.error("the tune of label set %r of %s failed", job.set_name, job.team_id, exc_info=exc)
        again = self.deps.store.fail_tune(
            job,
            owner=self.owner,
            error=f"{type(exc).__name__}: {exc}",
            retry_after=self.deps.settings.retune_settle_seconds,
            max_attempts=self.max_attempts,
        )
        if not again:
            self._give_up(job, exc, attempts=job.attempts, failed=True)

    def _give_up(
        self, job: TuneJob, exc: BaseException | None, *, attempts: int, failed: bool = False
    ) -> None:
        """Delete a job tried `attempts` times (already gone when `failed`) and say so."""
        if not failed:
            self.deps.store.fail_tune(
                job,
                owner=self.owner,
                error="taken too often",
                retry_after=0,
                max_attempts=1,
            )
        log.warning(
            "gave up tuning label set %r of %s after %d attempts (last error: %s)",
            job.set_name,
            job.team_id,
            attempts,
            exc if exc is not None else job.last_error or "none: its tunes stopped before they ended",
        )
        self._tell(job, tune_notices.gave_up_line(job.set_name, attempts=attempts, exc=exc))

    def _tell(self, job: TuneJob, message: str) -> None:
        """DM whoever asked with `/label tune`; a re-tune that edits asked for tells nobody."""
        if not job.requested_by:
            return
        try:
            client = self.client_for(job.team_id)
        except Exception:
            log.exception("no Slack client for workspace %s", job.team_id)
            return
        if client is None:
            log.warning("cannot tell %s about a tune: not installed in %s", job.requested_by, job.team_id)
            return
        tune_notices.notify(client, job.requested_by, message)
