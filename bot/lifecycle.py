"""The background side of a serving process: the threads that do the work after Slack's ack, the
background rounds (`bot.background`) built and started together, and a graceful, bounded stop.

    lifecycle = Lifecycle(deps)
    app = build_app(deps, executor=lifecycle.executor)   # Bolt's lazy listeners run on it
    lifecycle.start()                                     # resume jobs left by stopped processes
    ...
    lifecycle.shutdown(timeout=20)                        # on SIGTERM

`shutdown` stops taking jobs, asks running bulk jobs to give themselves back after their current
batch and running experiments after their requests in flight (their progress is in the database;
the next process carries on), and waits up to `timeout` seconds for every listener already
started, an /ask in flight for instance, to finish and answer. The HTTP server (`bot.wsgi`,
through gunicorn's `worker_exit`) and Socket Mode (`gembot serve --socket`) both call it.

`start` also starts the process's background rounds (`bot.background`: bulk job leases, request
re-runs, pruning, re-tuning), which `shutdown` stops; a tune in progress is abandoned, not waited
for (another process redoes it once its lease lapses).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from slack_bolt import App
from slack_sdk import WebClient

from bot.background import (
    ClientFor,
    Housekeeping,
    JobResumer,
    ListenerExecutor,
    RequestResumer,
    Retention,
    Retuner,
)
from bot.retune import TuneJobs, WorkspaceClientFor
from bot.slack_retries import DeliveryTracker
from core.settings import Settings
from core.store import JobRecord, Store
from handlers import bulk
from handlers.deps import Deps

log = logging.getLogger(__name__)


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
        self.retuner = retuner or Retuner(
            TuneJobs(deps, client_for=workspace_clients(deps.settings, deps.store))
        )
        self._stopped = False

    def start(self, app: App | None = None) -> None:
        """Start looking for jobs to resume and, given the `app` built with `self.deliveries`, for
        requests to run again (at once, then every third of a lease); and start pruning old rows
        (at once, then hourly); and start looking for label sets to tune again (`bot.background`)."""
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
        self.deps.stop_experiments()
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
