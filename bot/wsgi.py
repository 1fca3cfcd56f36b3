"""The WSGI application: Slack's requests, a health check, and nothing else.

    POST /slack/events          every Slack request (events, commands, interactivity, shortcuts) → Bolt,
                                once its size and signature are checked (413, 401: bot.slack_http)
    GET  /slack/install         OAuth install only (SLACK_CLIENT_ID): the "Add to Slack" page → Bolt
    GET  /slack/oauth_redirect  OAuth install only: Slack's redirect with the code → Bolt
    GET  /healthz               200 {"ok": true} when the database answers, 503 otherwise
    anything else               404

`create_app()` is the factory gunicorn calls in each worker: `gunicorn 'bot.wsgi:create_app()'` (which
leaves out the read timeout on client sockets that `gembot serve --http` adds, `bot.http_worker`). It
also starts the worker's background side (`bot.lifecycle`: lazy listener threads, resuming bulk
jobs); `close()`, which `gembot serve` calls from gunicorn's `worker_exit` hook, stops it gracefully.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_bolt import App

from bot.app import SlackNotConfigured, build_app
from bot.lifecycle import Lifecycle
from bot.slack_http import SlackHandler
from core.errors import GembotError
from core.settings import Settings
from handlers.deps import Deps

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from core.embeddings.base import Embedder

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Seconds of GEMBOT_GRACEFUL_TIMEOUT kept for closing up after the in-flight work is done.
SHUTDOWN_MARGIN = 3.0


class GembotWSGI:
    """Routes requests to Bolt or the health check; see the module doc.

    `verify_requests` says what `build_app` was told: whether requests must carry Slack's signature
    (with SLACK_SIGNING_SECRET), checked here on the body's bytes before Bolt parses them.
    """

    def __init__(
        self, app: App, deps: Deps, *, lifecycle: Lifecycle | None = None, verify_requests: bool = True
    ) -> None:
        self.app = app
        self.deps = deps
        self.lifecycle = lifecycle
        settings = deps.settings
        secret = settings.slack_signing_secret
        if verify_requests and secret is None:
            raise SlackNotConfigured("SLACK_SIGNING_SECRET is not set: copy it from the Slack app's settings")
        # Bolt's adapter, behind a bound on the body and a check of its signature, with what Slack
        # never sends answered 4xx rather than 500 (bot.slack_http).
        self._slack = SlackHandler(
            app,
            path=SLACK_PATH,
            max_body_bytes=settings.max_body_bytes,
            signing_secret=secret.get() if verify_requests and secret is not None else None,
        )
        flow = app.oauth_flow
        self._oauth_paths = {flow.install_path, flow.redirect_uri_path} if flow is not None else set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == SLACK_PATH and method == "POST":
            return self._slack(environ, start_response)
        if path in self._oauth_paths and method == "GET":
            return self._slack(environ, start_response)
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            status, payload = self.health()
            return _json(start_response, status, payload, head=method == "HEAD")
        return _json(start_response, "404 Not Found", {"ok": False, "error": "not_found"})

    def health(self) -> tuple[str, dict[str, object]]:
        """200 when the database answers; 503 (without details: the endpoint is public) otherwise."""
        try:
            self.deps.store.ping()
        except GembotError as exc:
            log.warning("health check failed: %s", exc)
            return "503 Service Unavailable", {"ok": False, "error": "database_unavailable"}
        return "200 OK", {"ok": True}

    def close(self, *, timeout: float | None = None) -> None:
        """Stop gracefully (see `bot.lifecycle`): in-flight listeners get `timeout` seconds (default: a
        little less than GEMBOT_GRACEFUL_TIMEOUT, gunicorn's own limit), then the database is closed."""
        if self.lifecycle is not None:
            if timeout is None:
                timeout = max(1.0, self.deps.settings.graceful_timeout - SHUTDOWN_MARGIN)
            self.lifecycle.shutdown(timeout)
        self.deps.close()


def _json(start_response: StartResponse, status: str, payload: object, *, head: bool = False) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [] if head else [body]


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> GembotWSGI:
    """Settings (from the environment by default) → database, Gemini client, Bolt app → WSGI app."""
    settings = settings or Settings.from_env()
    deps = Deps.open(settings, embedder=embedder)
    try:
        lifecycle = Lifecycle(deps)
        app = build_app(deps, executor=lifecycle.executor, deliveries=lifecycle.deliveries)
        # Building the engine imports scikit-learn, which holds the interpreter for a second or
        # two: paid here, before this worker takes requests, not by the acks around its first
        # /classify. (The local embedder's model still loads on first use.)
        deps.engine  # noqa: B018 (a property: the access is the point)
    except BaseException:
        deps.close()
        raise
    # Started here, in the worker (gunicorn calls this after the fork): threads do not survive a fork.
    lifecycle.start(app)
    return GembotWSGI(app, deps, lifecycle=lifecycle)
