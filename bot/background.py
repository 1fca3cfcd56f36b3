"""Every background round of a serving process (HTTP workers and Socket Mode alike), in one place.

A round is a `BackgroundRound`: a daemon thread that runs `round()` at once and then every
`interval` seconds until stopped, and never dies of a failed round (a failure is one log line; the
next round tries again). `bot.lifecycle` builds the four below, starts them with the process and
stops them with it:

- `JobResumer` (bulk job leases), every third of GEMBOT_JOB_LEASE_SECONDS: renews the leases of
  this process's bulk jobs and takes over the jobs nobody holds (queued, or a lapsed lease) of the
  kinds a server runs: CSV classifications and experiments started in Slack (one started on the
  command line is carried on by `gembot experiment resume` alone).
- `RequestResumer` (request leases), every third of the same lease: renews the leases of the
  requests this process works on, and runs again (through the app, as if it had just arrived) a
  request whose process stopped renewing its lease (`bot.slack_retries` claims and tracks them).
- `Housekeeping` (all pruning), hourly: deletes the rows the database would otherwise keep for ever
  (see its class doc).
- `Retuner` (label sets to tune again), every twentieth of GEMBOT_RETUNE_SETTLE (1 to 30 seconds):
  claims one due tune job a round; seeing a tune through (its thread, its lease, its verdict, the
  requester's DM) is `bot.retune`'s.

No request ever waits for a round: each has its own thread. Several processes running the same
round at once is harmless: leases keep a job or a request to one holder, and deleting what another
process just deleted deletes nothing.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from bot.retune import TuneJobs
from bot.slack_retries import REPLAY, DeliveryTracker
from core.bulk_runner import KIND_CLASSIFY_CSV
from core.errors import GembotError
from core.experiments.runner import KIND_SLACK
from core.settings import Settings
from core.store import JobRecord, Store
from core.store.db import unavailable
from core.store.schema import slack_oauth_states
from handlers import bulk, experiment_runs
from handlers.deps import Deps
from handlers.replies import UnknownReplyTo

log = logging.getLogger(__name__)

# Old rows are pruned this often (seconds) by each process.
PRUNE_EVERY = 3600.0
# Daily usage counters are kept this long (today's included), then pruned.
USAGE_RETENTION = timedelta(days=7)
# Finished jobs (their input and rows) are kept this long, then pruned.
JOB_RETENTION = timedelta(days=7)
# Jobs taken over from other processes that one process runs at once, each on its own thread.
RESUMED_AT_ONCE = 2
#: The kinds of job a serving process takes over (`JobResumer`).
RESUMED_KINDS = (KIND_CLASSIFY_CSV, KIND_SLACK)
# Runs of one request in all: the first, and one more by another process if the first died.
MAX_REQUEST_RUNS = 2
# Requests taken over from dead processes per round of one process.
RESUMED_PER_ROUND = 10
# The longest the retuner waits between two looks: a tune job is due only after it has settled.
LONGEST_RETUNE_INTERVAL = 30.0

#: How a resumed bulk job reaches Slack (None: the workspace uninstalled Gembot).
ClientFor = Callable[[JobRecord], WebClient | None]


def every_third_of(lease_seconds: float) -> float:
    """How often a process renews leases of `lease_seconds`: three chances before one lapses."""
    return max(0.2, lease_seconds / 3)


class BackgroundRound(abc.ABC):
    """Calls `round()` on a thread of its own every `interval` seconds (see the module doc)."""

    #: The thread's name, and the words for a failed round in the log ("… jobs to resume").
    name: str = "gembot-background"
    looking_for: str = "work"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def round(self) -> int:
        """One round; returns how much work it took on."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop sweeping, waiting up to `timeout` seconds for the round under way, if any, to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, timeout))

    def sweep(self) -> int:
        """One round, its failure logged (a database away for a while is expected) rather than raised."""
        try:
            return self.round()
        except GembotError as exc:
            log.warning("could not look for %s: %s", self.looking_for, exc)
        except Exception:
            log.exception("unexpected failure while looking for %s", self.looking_for)
        return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            self._stop.wait(self.interval)


class ListenerExecutor(ThreadPoolExecutor):
    """A thread pool that can wait, for a bounded time, for the work it was given (`drain`): the
    lazy listeners of a process run on one, the bulk jobs it resumed on another."""

    def __init__(self, max_workers: int, *, thread_name_prefix: str = "gembot-lazy") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._futures: set[Future[Any]] = set()
        self._futures_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    @property
    def pending(self) -> int:
        """Work submitted and not finished yet (running or waiting for a thread)."""
        with self._futures_lock:
            return len(self._futures)

    def drain(self, timeout: float) -> int:
        """Take no more work and wait up to `timeout` seconds for the rest; returns how much is unfinished.

        Work still waiting for a thread is run, not dropped.
        """
        self.shutdown(wait=False)
        with self._futures_lock:
            futures = set(self._futures)
        _, unfinished = wait(futures, timeout=max(0.0, timeout))
        return len(unfinished)

    def _forget(self, future: Future[Any]) -> None:
        with self._futures_lock:
            self._futures.discard(future)


# -- bulk job leases ---------------------------------------------------------------------------------


class JobResumer(BackgroundRound):
    """Every `interval` seconds: renew the leases of this process's jobs, and take over jobs nobody
    holds (queued, or a lapsed lease) when a thread is free for them. Old finished jobs are pruned
    by `Housekeeping`."""

    name = "gembot-job-resumer"
    looking_for = "jobs to resume"

    def __init__(self, deps: Deps, *, client_for: ClientFor, interval: float | None = None) -> None:
        lease = deps.settings.job_lease_seconds
        super().__init__(interval if interval is not None else every_third_of(lease))
        self.deps = deps
        self.client_for = client_for
        self.executor = ListenerExecutor(RESUMED_AT_ONCE, thread_name_prefix="gembot-jobs")

    def round(self) -> int:
        """Renew, take over. Returns how many jobs were taken over."""
        jobs = self.deps.jobs
        jobs.heartbeat()
        taken = jobs.claim(limit=RESUMED_AT_ONCE - self.executor.pending, kinds=RESUMED_KINDS)
        for job in taken:
            done, total = job.rows_done, job.rows_total
            log.info("resuming job #%d (%s, %d of %d rows done)", job.id, job.kind, done, total)
            self.executor.submit(self._resume, job)
        return len(taken)

    def _resume(self, job: JobRecord) -> None:
        if job.kind not in RESUMED_KINDS:
            self.deps.jobs.fail(job, f"this version of Gembot does not know jobs of kind {job.kind!r}")
            return
        try:
            bulk.reply_to_of(job)
        except UnknownReplyTo as exc:
            self._give_up(job, str(exc))
            return
        try:
            client = self.client_for(job)
        except Exception:
            log.exception("no Slack client for job #%d", job.id)
            client = None
        if client is None:
            self._give_up(job, "Gembot is no longer installed in the workspace that asked for it")
            return
        if job.kind == KIND_SLACK:
            experiment_runs.resume(self.deps, job, client=client)
        else:
            bulk.resume(self.deps, job, client=client)

    def _give_up(self, job: JobRecord, error: str) -> None:
        """Fail a job that cannot be carried on (and its experiment, when it runs one)."""
        if job.kind == KIND_SLACK:
            experiment_runs.give_up(self.deps, job, error)
        else:
            self.deps.jobs.fail(job, error)


# -- request leases ----------------------------------------------------------------------------------


class RequestResumer(BackgroundRound):
    """Every `interval` seconds: renew this process's request leases, run again what dead processes
    left, and give up on what ran MAX_REQUEST_RUNS times (a request that kills
    every process that takes it does not go round forever). Old claims are pruned by `Housekeeping`."""

    name = "gembot-request-resumer"
    looking_for = "requests to run again"

    def __init__(self, app: App, tracker: DeliveryTracker, *, interval: float | None = None) -> None:
        super().__init__(interval if interval is not None else every_third_of(tracker.lease.total_seconds()))
        self.app = app
        self.tracker = tracker

    def round(self) -> int:
        """Returns how many requests were run again."""
        deliveries = self.tracker.store.deliveries
        self.tracker.renew()
        for key in deliveries.give_up(max_attempts=MAX_REQUEST_RUNS):
            log.error("request %s stopped its process %d times: given up", key, MAX_REQUEST_RUNS)
        abandoned = deliveries.take_abandoned(
            lease=self.tracker.lease, max_attempts=MAX_REQUEST_RUNS, limit=RESUMED_PER_ROUND
        )
        for request in abandoned:
            log.warning("running request %s again: the process that took it stopped", request.key)
            self._replay(request.key, request.payload)
        return len(abandoned)

    def _replay(self, key: str, payload: dict[str, Any]) -> None:
        # Socket Mode's kind of request: a parsed body with no signature to check (it was checked
        # when it first arrived). The ack goes nowhere; the lazy listeners answer as usual.
        request = BoltRequest(body=payload, mode="socket_mode", context={REPLAY: key})
        response = self.app.dispatch(request)
        if response.status != 200:
            log.warning("request %s run again was refused (%d)", key, response.status)


# -- pruning -----------------------------------------------------------------------------------------


def _default(name: str) -> int:
    """A setting's declared default, for what a round keeps when it is not told otherwise."""
    return int(Settings.model_fields[name].default)


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept before a round prunes it (the defaults: the settings')."""

    conversations: timedelta = timedelta(days=_default("conversation_retention_days"))
    requests: timedelta = timedelta(hours=_default("event_retention_hours"))
    jobs: timedelta = JOB_RETENTION
    # None: the experiments' response cache is kept for ever (GEMBOT_GENERATION_CACHE_DAYS=0).
    generation_cache: timedelta | None = timedelta(days=_default("generation_cache_days"))

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        days = settings.generation_cache_days
        return cls(
            conversations=timedelta(days=settings.conversation_retention_days),
            requests=timedelta(hours=settings.event_retention_hours),
            generation_cache=timedelta(days=days) if days > 0 else None,
        )


@dataclass(frozen=True)
class Pruned:
    """What one round deleted, part by part (None: that part failed)."""

    usage_counters: int | None = 0
    oauth_states: int | None = 0
    conversation_turns: int | None = 0
    jobs: int | None = 0
    requests: int | None = 0
    answers: int | None = 0
    cached_replies: int | None = 0
    unconfirmed_experiments: int | None = 0

    @property
    def total(self) -> int:
        parts = (
            self.usage_counters,
            self.oauth_states,
            self.conversation_turns,
            self.jobs,
            self.requests,
            self.answers,
            self.cached_replies,
            self.unconfirmed_experiments,
        )
        return sum(n for n in parts if n)


def prune_oauth_states(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete the OAuth install states that expired before `now` (default: now, timezone-aware);
    returns how many went. Such a state can no longer be used: slack_sdk accepts a state only
    while its `expire_at` is ahead."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("prune_oauth_states needs a timezone-aware datetime")
    # slack_sdk stores `expire_at` as naive UTC (`normalize_datetime_for_db`), and so compares.
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        result = conn.execute(delete(slack_oauth_states).where(slack_oauth_states.c.expire_at < naive_utc))
    return int(result.rowcount or 0)


class Housekeeping(BackgroundRound):
    """Prunes the rows the database would otherwise keep for ever, a round when started and then one
    every `interval` seconds:

    - Daily usage counters (`usage_counters`): the limits are per UTC day, so only today's rows are
      ever read. The counters of the last USAGE_RETENTION days stay, for whoever looks at the
      table; older days are deleted (`Store.prune_usage`).
    - Slack's OAuth install states (`slack_oauth_states`): slack_sdk's state store deletes a state
      when an install uses it, but one issued for an install nobody finished stays after it expires
      (`bot.oauth.STATE_EXPIRATION`, 10 minutes). Expired states are deleted here. The table is
      slack_sdk's, written on the store's engine and never by `Store`, so it is pruned beside it, by
      the table's declaration in `core.store.schema` (tests keep it equal to slack_sdk's own).
    - Conversation turns in threads, and the images they brought, older than
      GEMBOT_CONVERSATION_RETENTION_DAYS (`Store.prune_conversations`).
    - Gemini's answers in Slack and the feedback on them, older than the same
      GEMBOT_CONVERSATION_RETENTION_DAYS (`Store.prune_answers`).
    - Finished bulk jobs, their input and rows, JOB_RETENTION after they ended (`JobStore.prune`).
    - Request claims (`bot.slack_retries`), GEMBOT_EVENT_RETENTION_HOURS after they were taken: by
      then Slack resends nothing (`DeliveryStore.prune`).
    - The experiments' response cache, GEMBOT_GENERATION_CACHE_DAYS after an answer was kept (never
      with 0); the experiments and their results are the team's and stay
      (`ExperimentStore.prune_cache`). An experiment still waiting for its **Run it** press
      JOB_RETENTION after it was sent is cancelled (`ExperimentStore.cancel_stale`).

    Each part of a round that fails (the database away, say) logs one line and leaves the others
    to run; the next round tries again.
    """

    name = "gembot-housekeeping"
    looking_for = "old rows to prune"

    def __init__(
        self, store: Store, *, retention: Retention | None = None, interval: float = PRUNE_EVERY
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.retention = retention or Retention()

    def round(self) -> int:
        """One round (`run`); returns how many rows went in all."""
        return self.run().total

    def run(self, *, now: datetime | None = None) -> Pruned:
        """One round, here and now (`now`: timezone-aware, default the current time): each part
        apart, a part that fails logging one line and leaving the others to run."""
        moment = now if now is not None else datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("Housekeeping.run needs a timezone-aware datetime")
        store, kept = self.store, self.retention
        before = moment.astimezone(UTC).date() - USAGE_RETENTION + timedelta(days=1)
        return Pruned(
            usage_counters=self._part(
                f"usage counters of days before {before.isoformat()}", lambda: store.prune_usage(before)
            ),
            oauth_states=self._part(
                "expired OAuth install states", lambda: prune_oauth_states(store.engine, now=moment)
            ),
            conversation_turns=self._part(
                f"conversation turns older than {_span(kept.conversations)}",
                lambda: store.prune_conversations(moment - kept.conversations),
            ),
            jobs=self._part(
                f"finished jobs older than {_span(kept.jobs)}", lambda: store.jobs.prune(moment - kept.jobs)
            ),
            requests=self._part(
                f"request ids older than {_span(kept.requests)}",
                lambda: store.deliveries.prune(moment - kept.requests),
            ),
            answers=self._part(
                f"answers and their feedback older than {_span(kept.conversations)}",
                lambda: store.prune_answers(moment - kept.conversations),
            ),
            cached_replies=self._cache_part(moment),
            unconfirmed_experiments=self._part(
                f"experiments unconfirmed for {_span(kept.jobs)}",
                lambda: store.experiments.cancel_stale(moment - kept.jobs),
            ),
        )

    def _cache_part(self, moment: datetime) -> int | None:
        kept = self.retention.generation_cache
        if kept is None:
            return 0
        return self._part(
            f"cached experiment replies older than {_span(kept)}",
            lambda: self.store.experiments.prune_cache(moment - kept),
        )

    def _part(self, what: str, prune: Callable[[], int]) -> int | None:
        try:
            removed = prune()
        except Exception as exc:
            log.warning("could not prune %s: %s", what, _one_line(exc, self.store.engine))
            return None
        if removed:
            log.info("pruned %d %s", removed, what)
        return removed


def _span(span: timedelta) -> str:
    """`span` in words: "30 days", "24 hours"."""
    hours = span.total_seconds() / 3600
    if hours >= 48:
        return f"{hours / 24:g} days"
    return f"{hours:g} hours"


def _one_line(exc: BaseException, engine: Engine | None = None) -> str:
    """`exc` in one line, a database URL's password masked."""
    if isinstance(exc, SQLAlchemyError) and engine is not None:
        return str(unavailable(engine, exc))
    if isinstance(exc, GembotError):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# -- re-tuning ---------------------------------------------------------------------------------------


class Retuner(BackgroundRound):
    """When GEMBOT_RETUNE is on, claims one due tune job a round and sees it through (`tunes`,
    `bot.retune.TuneJobs`); the round returns 1 when it took one, else 0. `interval` defaults to a
    twentieth of the settle time, between one and LONGEST_RETUNE_INTERVAL seconds. A stop abandons
    a running tune.
    """

    name = "gembot-retuner"
    looking_for = "label sets to tune again"

    def __init__(self, tunes: TuneJobs, *, interval: float | None = None) -> None:
        settle = tunes.deps.settings.retune_settle_seconds
        default_interval = min(LONGEST_RETUNE_INTERVAL, max(1.0, settle / 20))
        super().__init__(interval if interval is not None else default_interval)
        self.tunes = tunes

    @property
    def owner(self) -> str:
        """The name this process's tune jobs are held under (its bulk jobs' owner)."""
        return self.tunes.owner

    def round(self) -> int:
        if not self.tunes.deps.settings.retune or self._stop.is_set():
            return 0
        return self.tunes.take_one(stopping=self._stop)
