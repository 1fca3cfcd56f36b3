"""What every Slack surface needs, built once per process from the settings: `Deps`.

`handlers.register_all(app, deps)` puts it into every request's Bolt `context` (`provide`);
each listener takes it back with `deps_of(context)` and reaches the store, the engine (which loads
an embedding model, so it is built on first use) and the Gemini client from it. It lives in
`handlers` rather than `bot` so that handlers never import the runtime that drives them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt import BoltContext

from core.bulk_runner import JobRunner
from core.daily_limits import Meter, UsageLimits
from core.gemini.client import GeminiClient
from core.gemini.failures import GeminiNotConfigured
from core.settings import Settings
from core.store import Store
from handlers.rights import Rights

if TYPE_CHECKING:
    from core.embeddings.base import Embedder
    from core.engine import Engine
    from core.experiments.runner import ExperimentRunner

NOT_CONFIGURED = (
    "Gemini is not configured for this bot: whoever runs it needs to set GEMINI_API_KEY "
    "(a key from https://aistudio.google.com/apikey)."
)


class Deps:
    """The settings, the store, the engine (lazy), the Gemini client (None without a key), the
    bulk job runner and the experiment runner (lazy).

    Thread-safe: one instance serves every request of a process.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        gemini: GeminiClient | None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gemini = gemini
        self._embedder = embedder
        self._engine: Engine | None = None
        self._experiments: ExperimentRunner | None = None
        self._lock = threading.Lock()
        # This process's bulk jobs (a CSV to classify): stored with their progress, resumable.
        self.jobs = JobRunner(store, lease_seconds=settings.job_lease_seconds)
        # The daily Gemini limits, counted in the database (`core.daily_limits`; `bot.limits` charges
        # each request's calls to its user), and who may curate label sets (`handlers.rights`).
        limits = UsageLimits(user_daily=settings.user_daily_limit, team_daily=settings.team_daily_limit)
        self.meter = Meter(store, limits)
        self.rights = Rights(settings)

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None, migrate: bool = True) -> Deps:
        """Open the database (migrating it unless `migrate` is False) and build the Gemini client.

        `embedder` replaces the configured one (tests pass a fast fake).
        """
        store = Store.open(settings.database_url, migrate=migrate)
        gemini = GeminiClient.from_settings(settings) if settings.gemini_api_key else None
        return cls(settings=settings, store=store, gemini=gemini, embedder=embedder)

    @property
    def engine(self) -> Engine:
        """The engine, built on first use: the local embedder loads a model, which takes seconds."""
        with self._lock:
            if self._engine is None:
                # Imported here: scikit-learn and the embedder cost seconds at import.
                from core.embeddings.factory import make_embedder
                from core.engine import Engine

                embedder = (
                    self._embedder
                    if self._embedder is not None
                    else make_embedder(self.settings, gemini=self.gemini)
                )
                # With a key, the engine asks Gemini about what the embeddings are not sure of.
                self._engine = Engine(
                    store=self.store, embedder=embedder, settings=self.settings, gemini=self.gemini
                )
            return self._engine

    @property
    def experiments(self) -> ExperimentRunner:
        """The process's experiment runner, built on first use; its jobs are held under the bulk
        job runner's owner, so that the leases this process takes over (`JobRunner.claim`) are the
        ones it runs. Built after `stop_experiments`, it starts stopped."""
        with self._lock:
            if self._experiments is None:
                # Imported here: the experiment engine is not needed until someone runs one.
                from core.experiments.runner import ExperimentRunner

                runner = ExperimentRunner(self.store, self.settings, self.gemini, owner=self.jobs.owner)
                if self.jobs.stopping:
                    runner.stop()
                self._experiments = runner
            return self._experiments

    def stop_experiments(self) -> None:
        """Make every experiment of this process give its job back after the requests in flight
        (call after `jobs.stop()`: a runner built later starts stopped)."""
        with self._lock:
            if self._experiments is not None:
                self._experiments.stop()

    def require_gemini(self) -> GeminiClient:
        """The Gemini client, or GeminiNotConfigured worded for a Slack user."""
        if self.gemini is None:
            raise GeminiNotConfigured(NOT_CONFIGURED)
        return self.gemini

    def close(self) -> None:
        self.store.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> Deps:
        # Bolt deep-copies a request's context for its lazy listeners: the process's one Deps
        # (its database pool, its engine) is shared, never copied.
        return self


#: Where `provide` puts the process's `Deps` in each request's Bolt context.
CONTEXT_KEY = "gembot_deps"


def provide(deps: Deps) -> Callable[[BoltContext, Callable[[], None]], None]:
    """A global middleware (`app.use`) that hands every listener the process's `deps` (see `deps_of`)."""

    def provide_deps(context: BoltContext, next: Callable[[], None]) -> None:
        context[CONTEXT_KEY] = deps
        next()

    return provide_deps


def deps_of(context: Mapping[str, Any]) -> Deps:
    """The process's `Deps`, from a listener's Bolt `context` (put there by `provide`)."""
    found = context.get(CONTEXT_KEY)
    if not isinstance(found, Deps):
        raise RuntimeError("this request's context holds no Deps: build the app with handlers.register_all")
    return found
