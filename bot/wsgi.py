"""The WSGI application: Slack's requests, a health check, and nothing else.

    POST /slack/events          every Slack request (events, commands, interactivity, shortcuts) → Bolt
    GET  /slack/install         OAuth install only (SLACK_CLIENT_ID): the "Add to Slack" page → Bolt
    GET  /slack/oauth_redirect  OAuth install only: Slack's redirect with the code → Bolt
    GET  /healthz               200 {"ok": true} when the database answers, 503 otherwise
    anything else               404

`create_app()` is the factory gunicorn calls in each worker: `gunicorn 'bot.wsgi:create_app()'`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import build_app
from core.errors import GembotError
from core.settings import Settings
from handlers.deps import Deps

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from core.embeddings.base import Embedder

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


class GembotWSGI:
    """Routes requests to Bolt or the health check; see the module doc."""

    def __init__(self, app: App, deps: Deps) -> None:
        self.app = app
        self.deps = deps
        self._slack = SlackRequestHandler(app, path=SLACK_PATH)
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

    def close(self) -> None:
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
        app = build_app(deps)
    except BaseException:
        deps.close()
        raise
    return GembotWSGI(app, deps)
