"""The background side of a serving process: the threads that do the work after Slack's ack, the
loop that takes over bulk jobs, and a graceful, bounded stop.

    lifecycle = Lifecycle(deps)
    app = build_app(deps, executor=lifecycle.executor)   # Bolt's lazy listeners run on it
    lifecycle.start()                                     # resume jobs left by stopped processes
    ...
    lifecycle.shutdown(timeout=20)                        # on SIGTERM

`shutdown` stops taking jobs, asks running bulk jobs to give themselves back after their current
batch (their progress is in the database; the next process carries on), and waits up to
`timeout` seconds for every listener already started, an /ask in flight for instance, to finish
and answer. The HTTP server (`bot.wsgi`, through gunicorn's `worker_exit`) and Socket Mode
(`gembot serve --socket`) both call it.

`start` also starts the process's pruning round (`bot.housekeeping`) and its re-tuner
(`bot.retune`), which `shutdown` stops; a tune in progress is abandoned, not waited for (another
process redoes it once its lease lapses).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.housekeeping import Housekeeping, Retention
from bot.retune import Retuner, WorkspaceClientFor
from bot.slack_retries import DeliveryTracker, RequestResumer
from bot.sweeps import Sweeper, every_third_of
from core.bulk_runner import KIND_CLASSIFY_CSV
from core.settings import Settings
from core.store import JobRecord, Store
from handlers import bulk
from handlers.deps import Deps
from handlers.replies import UnknownReplyTo

log = logging.getLogger(__name__)

# Jobs taken over from other processes that one process runs at once, each on its own thread.
RESUMED_AT_ONCE = 2

ClientFor = Callable[[JobRecord], WebClient | None]


class ListenerExecutor(ThreadPoolExecutor):
    """A thread pool that can wait, for a bounded time, for the work it was given (`drain`)."""

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


def slack_clients(settings: Settings, store: Store) -> ClientFor:
    """How a resumed job reaches Slack: the bot token (one workspace) or the installation of the
    workspace the job answers in (OAuth; `bulk.reply_to_of` reads it from the job)."""
    from bot import oauth
    from bot.app import slack_client, web_client

    if not oauth.oauth_enabled(settings):
        return lambda job: slack_client(settings)
    installations = oauth.installation_store(settings, store.engine)

    def installed(job: JobRecord) -> WebClient | None:
        to = bulk.reply_to_of(job)
        found = installations.find_bot(enterprise_id=to.enterprise, team_id=to.team)
        return web_client(settings, token=found.bot_token) if found and found.bot_token else None

    return installed


def workspace_clients(settings: Settings, store: Store) -> WorkspaceClientFor:
    """How background work for a workspace key (`TEAM` or `ENTERPRISE:TEAM`, `handlers.scope`)
    reaches Slack: the bot token (one workspace) or the workspace's installation (OAuth)."""
    from bot import oauth
    from bot.app import slack_client, web_client

    if not oauth.oauth_enabled(settings):
        return lambda key: slack_client(settings)
    installations = oauth.installation_store(settings, store.engine)

    def installed(key: str) -> WebClient | None:
        enterprise, _, team = key.rpartition(":")
        found = installations.find_bot(enterprise_id=enterprise or None, team_id=team)
        return web_client(settings, token=found.bot_token) if found and found.bot_token else None

    return installed


class JobResumer(Sweeper):
    """Every `interval` seconds: renew the leases of this process's jobs, and take over jobs nobody
    holds (queued, or a lapsed lease) when a thread is free for them. Old finished jobs are pruned
    by `bot.housekeeping`."""

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
        taken = jobs.claim(limit=RESUMED_AT_ONCE - self.executor.pending)
        for job in taken:
            done, total = job.rows_done, job.rows_total
            log.info("resuming job #%d (%s, %d of %d rows done)", job.id, job.kind, done, total)
            self.executor.submit(self._resume, job)
        return len(taken)

    def _resume(self, job: JobRecord) -> None:
        if job.kind != KIND_CLASSIFY_CSV:
            self.deps.jobs.fail(job, f"this version of Gembot does not know jobs of kind {job.kind!r}")
            return
        try:
            bulk.reply_to_of(job)
        except UnknownReplyTo as exc:
            self.deps.jobs.fail(job, str(exc))
            return
        try:
            client = self.client_for(job)
        except Exception:
            log.exception("no Slack client for job #%d", job.id)
            client = None
        if client is None:
            self.deps.jobs.fail(job, "Gembot is no longer installed in the workspace that asked for it")
            return
        bulk.resume(self.deps, job, client=client)


class Lifecycle:
    """The listener executor, the job and request resumers, the pruning round and the re-tuner of
    one process, started and stopped together (`retuner`: tests pass one with a fake engine)."""

    def __init__(
        self,
        deps: Deps,
        *,
        executor: ListenerExecutor | None = None,
        client_for: ClientFor | None = None,
        retuner: Retuner | None = None,
    ) -> None:
        self.deps = deps
        self.executor = executor or ListenerExecutor(deps.settings.slack_threads)
        self.resumer = JobResumer(deps, client_for=client_for or slack_clients(deps.settings, deps.store))
        lease = timedelta(seconds=deps.settings.job_lease_seconds)
        self.deliveries = DeliveryTracker(deps.store, lease=lease)
        self.requests: RequestResumer | None = None
        self.housekeeping = Housekeeping(deps.store, retention=Retention.of(deps.settings))
        self.retuner = retuner or Retuner(deps, client_for=workspace_clients(deps.settings, deps.store))
        self._stopped = False

    def start(self, app: App | None = None) -> None:
        """Start looking for jobs to resume and, given the `app` built with `self.deliveries`, for
        requests to run again (at once, then every third of a lease); and start pruning old rows
        (at once, then hourly); and start looking for label sets to tune again (`bot.retune`)."""
        self.resumer.start()
        self.housekeeping.start()
        self.retuner.start()
        if app is not None:
            self.requests = RequestResumer(app, self.deliveries)
            self.requests.start()

    def shutdown(self, timeout: float) -> bool:
        """Stop gracefully within `timeout` seconds (see the module doc); True when nothing was left
        running."""
        if self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout
        started = self.executor.pending + self.resumer.executor.pending
        log.info("stopping: %d listener(s) and job(s) in flight get up to %.0f s to finish", started, timeout)
        self.resumer.stop()
        # A tune in progress is abandoned: the round returns at once, and the lease lapses.
        self.retuner.stop(timeout=min(5.0, deadline - time.monotonic()))
        if self.requests is not None:
            # Requests still running when time is up keep their claims: once their leases lapse,
            # another process runs them again.
            self.requests.stop()
        self.deps.jobs.stop()
        unfinished = self.executor.drain(deadline - time.monotonic())
        unfinished += self.resumer.executor.drain(deadline - time.monotonic())
        # Pruning is never worth holding up a stop for: it gets what time is left (a round cut
        # short rolls back, and the next process's round does it).
        self.housekeeping.stop(timeout=min(10.0, deadline - time.monotonic()))
        if unfinished:
            log.warning("stopped with %d listener(s) or job(s) unfinished", unfinished)
        else:
            log.info("stopped: nothing left in flight")
        return unfinished == 0
