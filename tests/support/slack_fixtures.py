"""Fixtures for Slack scenario tests: the Slack and Gemini stand-ins, and the bot served over HTTP.

`tests/conftest.py` registers this module (and `gemini_fixtures`, whose `gemini_standin` the bot
talks to) as a plugin, so a test asks for `slack_standin`, `bot_server` or `make_bot_server` by
name and imports from here only the types (`BotServer`, `MakeBotServer`).

`bot_server` is the app as it runs in production (`bot.wsgi`, Bolt, lazy listeners, the real
slack_sdk and google-genai clients) on a threaded WSGI server on 127.0.0.1, port 0, talking to
both stand-ins, with a fresh SQLite database and a fast bag-of-words embedder. `make_bot_server`
builds variants: another database (pass `database_url` to run on PostgreSQL too), no Gemini key,
the real embedder, extra listeners.

Requests reach the app as signed `BoltRequest`s through `app.dispatch`, in process (the
`slack_transport` fixture, "dispatch"); tests/bot/ sets it to "http", so the runtime's tests POST
to the server as Slack does.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App

from bot.app import build_app
from bot.lifecycle import Lifecycle, ListenerExecutor
from bot.wsgi import GembotWSGI
from core.embeddings.base import Embedder
from core.settings import Settings
from handlers.deps import Deps
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.gemini import GeminiStandIn
from tests.support.slack_harness import (
    DEFAULT_SIGNING_SECRET,
    DispatchSender,
    Reply,
    SlackSender,
    block_actions_payload,
    message_action_payload,
    view_submission_payload,
)
from tests.support.slack_standin import SlackStandIn

Setup = Callable[[App, Deps], None]
Transport = Literal["dispatch", "http"]


@pytest.fixture
def slack_standin() -> Iterator[SlackStandIn]:
    """A running Slack Web API stand-in, fresh for each test."""
    with SlackStandIn() as standin:
        yield standin


class TrackingExecutor(ListenerExecutor):
    """The production listener executor, which can also tell when all the work submitted to it is done."""

    def __init__(self, max_workers: int, *, thread_name_prefix: str = "test-lazy") -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise AssertionError(f"listeners still running after {timeout:g} s")


def stop_worker(lifecycle: Lifecycle | None, executor: Executor | None, deps: Deps | None) -> None:
    """Stop a bot process's back end as a SIGTERM'd worker does, in this order: its lifecycle (running
    listeners finish, bulk jobs give themselves back after their batch), its listener threads, its
    database. Whatever is None was never started."""
    if lifecycle is not None:
        lifecycle.shutdown(timeout=30)
    if executor is not None:
        executor.shutdown(wait=True)
    if deps is not None:
        deps.close()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def bot_settings(
    slack: SlackStandIn,
    gemini: GeminiStandIn | None,
    database_url: str,
    *,
    env: dict[str, str] | None = None,
) -> Settings:
    """Settings read the way production reads them (environment names), aimed at the stand-ins."""
    values = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "GEMBOT_EMBEDDER": "local",
        "GEMBOT_GEMINI_RETRIES": "0",
        "GEMBOT_GEMINI_RETRY_DELAY": "0.01",
        "GEMBOT_GEMINI_TIMEOUT": "30",
    }
    if gemini is not None:
        values.update(GEMINI_API_KEY=gemini.api_key, GEMINI_BASE_URL=gemini.base_url)
    values.update(env or {})
    return Settings.from_env(values, dotenv=Path("/nonexistent/.env"))


@dataclass
class BotServer:
    """The bot served over HTTP for one test; see the module doc.

    `send_*` sign and POST what Slack would send and return the app's `Reply` (status, body,
    elapsed). Answers come from lazy listeners on background threads: wait for them with
    `slack.wait_for("chat.update")` and friends.
    """

    slack: SlackStandIn
    gemini: GeminiStandIn | None
    settings: Settings
    embedder: Embedder | None
    setup: Setup | None
    deps: Deps | None = None
    app: App | None = None
    wsgi: GembotWSGI | None = None
    _server: _ThreadingWSGIServer | None = None
    _thread: threading.Thread | None = None
    _executor: TrackingExecutor | None = None
    lifecycle: Lifecycle | None = None
    #: "dispatch": `send_*` hand the signed request to `app.dispatch` in process; "http": they POST
    #: it to the running server, through the WSGI layer (sizes, early signature check) as Slack would.
    transport: Transport = "dispatch"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, keep_calls: bool = False) -> BotServer:
        self.deps = Deps.open(self.settings, embedder=self.embedder)
        self._executor = TrackingExecutor(8)
        self.lifecycle = Lifecycle(self.deps, executor=self._executor)
        self.app = build_app(self.deps, executor=self._executor, deliveries=self.lifecycle.deliveries)
        if self.setup is not None:
            self.setup(self.app, self.deps)
        self.wsgi = GembotWSGI(self.app, self.deps, lifecycle=self.lifecycle)
        self._server = make_server(
            "127.0.0.1", 0, self.wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        if not keep_calls:
            # What building the app said to Slack (auth.test) is not what a test is about.
            self.slack.clear_calls()
        # As in production: jobs that a stopped server left behind are taken over from here on.
        self.lifecycle.start(self.app)
        return self

    def stop(self) -> None:
        """Stop serving, then stop as a SIGTERM'd worker does: running lazy listeners finish, bulk
        jobs give themselves back after their current batch; close the database."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        stop_worker(self.lifecycle, self._executor, self.deps)
        self.lifecycle, self._executor, self.deps = None, None, None

    def restart(self, *, keep_calls: bool = False) -> BotServer:
        """A new process, as far as the app can tell: new Deps, new Bolt app, new port; same database.

        `keep_calls` keeps the Slack calls recorded so far (and adds the new app's auth.test).
        """
        self.stop()
        return self.start(keep_calls=keep_calls)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every listener started so far (lazy or event) has finished."""
        assert self._executor is not None
        self._executor.wait_idle(timeout)

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the bot server is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    @property
    def sender(self) -> SlackSender:
        """Signs what Slack would send and delivers it by `transport`."""
        if self.transport == "dispatch":
            assert self.app is not None, "the bot server is not running"
            return DispatchSender(self.app, DEFAULT_SIGNING_SECRET)
        return SlackSender(self.events_url, DEFAULT_SIGNING_SECRET)

    @property
    def team(self) -> str:
        return self.slack.team_id

    def get(self, path: str) -> tuple[int, Any]:
        """GET `path`; returns (status, parsed JSON body or text)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                status, raw = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    # -- what Slack sends -----------------------------------------------------------------

    def send_command(
        self, command: str, text: str = "", *, options: dict[str, Any] | None = None, **fields: Any
    ) -> Reply:
        """A slash command; its response_url is on the Slack stand-in unless `response_url=` says otherwise.

        `fields` (user_id, channel_id, ...) go into the payload; `options` (forge, stale,
        retry_num, ...) to `SlackSender.post`. The reply's `sent["response_url"]` is the URL used.
        """
        fields.setdefault("response_url", self.slack.response_url())
        fields.setdefault("team_id", self.team)
        reply = self.sender.command(command, text, options=options, **fields)
        reply.sent["response_url"] = fields["response_url"]
        return reply

    def send_event(
        self, event: dict[str, Any], *, options: dict[str, Any] | None = None, **fields: Any
    ) -> Reply:
        """An Events API callback; `fields` go to the envelope (event_id, team_id, ...)."""
        fields.setdefault("team_id", self.team)
        fields.setdefault("bot_user_id", self.slack.bot_user_id)
        return self.sender.event(event, options=options, **fields)

    def send_action(self, action_id: str, *, options: dict[str, Any] | None = None, **fields: Any) -> Reply:
        """A block_actions payload (see `slack_harness.block_actions_payload` for `fields`)."""
        fields.setdefault("team_id", self.team)
        fields.setdefault("response_url", self.slack.response_url())
        return self.sender.interactive(block_actions_payload(action_id, **fields), **(options or {}))

    def send_shortcut(
        self,
        callback_id: str,
        *,
        message: dict[str, Any],
        options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Reply:
        """A message shortcut on `message` (needs `ts` and `text`, usually `user`)."""
        fields.setdefault("team_id", self.team)
        fields.setdefault("response_url", self.slack.response_url())
        payload = message_action_payload(callback_id, message=message, **fields)
        return self.sender.interactive(payload, **(options or {}))

    def send_view_submission(
        self,
        callback_id: str,
        *,
        values: dict[str, dict[str, dict[str, Any]]],
        options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Reply:
        """A modal submitted with `values` ({block_id: {action_id: {...}}}, as Slack shapes them)."""
        fields.setdefault("team_id", self.team)
        payload = view_submission_payload(callback_id, values=values, **fields)
        return self.sender.interactive(payload, **(options or {}))


MakeBotServer = Callable[..., BotServer]


@pytest.fixture
def slack_transport() -> Transport:
    """How `BotServer.send_*` reach the app: in process through `app.dispatch`. The runtime's tests
    (tests/bot/conftest.py) override it with "http", for what only the real server shows."""
    return "dispatch"


@pytest.fixture
def make_bot_server(
    slack_standin: SlackStandIn,
    gemini_standin: GeminiStandIn,
    sqlite_template: Path,
    tmp_path: Path,
    slack_transport: Transport,
) -> Iterator[MakeBotServer]:
    """Start bot servers: `make_bot_server(database_url=None, gemini=True, embedder="fake",
    setup=None, env=None, transport=None)`.

    `database_url` defaults to a fresh SQLite file; `gemini=False` leaves GEMINI_API_KEY unset;
    `embedder="real"` uses the configured (MiniLM) embedder instead of the bag-of-words fake, and an
    `Embedder` is used as it is (it survives `restart()`);
    `setup(app, deps)` adds listeners after the surfaces are registered; `env` adds settings;
    `transport` overrides the `slack_transport` fixture for this server.
    """
    started: list[BotServer] = []

    def make(
        *,
        database_url: str | None = None,
        gemini: bool = True,
        embedder: str | Embedder = "fake",
        setup: Setup | None = None,
        env: dict[str, str] | None = None,
        transport: Transport | None = None,
    ) -> BotServer:
        if database_url is None:
            path = tmp_path / f"bot-{len(started)}.db"
            shutil.copyfile(sqlite_template, path)
            database_url = f"sqlite:///{path}"
        settings = bot_settings(slack_standin, gemini_standin if gemini else None, database_url, env=env)
        server = BotServer(
            slack=slack_standin,
            gemini=gemini_standin,
            settings=settings,
            embedder=(
                embedder
                if isinstance(embedder, Embedder)
                else BagOfWordsEmbedder()
                if embedder == "fake"
                else None
            ),
            setup=setup,
            transport=transport or slack_transport,
        )
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def bot_server(make_bot_server: MakeBotServer) -> BotServer:
    """The bot with Gemini configured, on a fresh SQLite database, with the fake embedder."""
    return make_bot_server()
