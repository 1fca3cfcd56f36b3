"""The runtime around the surfaces: signatures, routes, health, event de-duplication, ignored messages."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App

from bot.app import SlackNotConfigured, build_app
from bot.logs import RedactingFilter
from handlers import matchers
from handlers.deps import Deps
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackStandIn


class Probe:
    """A `message` listener behind the shared matcher, recording what reached it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def setup(self, app: App, deps: Deps) -> None:
        @app.event("message", matchers=[matchers.from_a_person])
        def record(event: dict[str, Any]) -> None:
            with self._lock:
                self.seen.append(event)

        @app.event("message")
        def ignore_the_rest() -> None:
            pass  # acknowledged, not processed

    @property
    def texts(self) -> list[str]:
        with self._lock:
            return [e.get("text", "") for e in self.seen]


def said(text: str, **extra: Any) -> dict[str, Any]:
    """A channel message: no surface reads those (DMs and mentions have theirs), so the probe does."""
    return {
        "type": "message",
        "channel": "C0RUNTIME",
        "channel_type": "channel",
        "user": "U0HUMAN",
        "text": text,
        "ts": "1700000000.000100",
        "event_ts": "1700000000.000100",
        **extra,
    }


# -- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["forge", "stale", "unsigned"])
def test_a_request_not_signed_by_slack_is_refused_and_does_nothing(
    bot_server: BotServer, tamper: str
) -> None:
    options = {"forge": {"forge": True}, "stale": {"stale": True}, "unsigned": {"signed": False}}[tamper]
    reply = bot_server.send_command("/ask", "What is 2+2?", options=options)
    assert reply.status == 401
    event = bot_server.send_event(said("hello"), options=options)
    assert event.status == 401
    bot_server.settle()
    assert bot_server.slack.calls() == []
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []


def test_a_timestamp_just_inside_five_minutes_is_accepted(bot_server: BotServer) -> None:
    reply = bot_server.send_command("/ask", "", options={"timestamp": int(time.time()) - 280})
    assert reply.status == 200


# -- routes and health ---------------------------------------------------------------------------


def test_healthz_answers_when_the_database_does(bot_server: BotServer) -> None:
    assert bot_server.get("/healthz") == (200, {"ok": True})


def test_healthz_is_503_when_the_database_is_unreachable(
    make_bot_server: MakeBotServer, sqlite_template: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "db"
    directory.mkdir()
    shutil.copyfile(sqlite_template, directory / "gembot.db")
    server = make_bot_server(database_url=f"sqlite:///{directory / 'gembot.db'}")
    assert server.get("/healthz")[0] == 200
    shutil.rmtree(directory)
    assert server.deps is not None
    server.deps.store.engine.dispose()  # drop the pooled connection to the deleted file
    assert server.get("/healthz") == (503, {"ok": False, "error": "database_unavailable"})
    assert server.get("/healthz") == (503, {"ok": False, "error": "database_unavailable"})


def test_unknown_paths_and_methods_are_404(bot_server: BotServer) -> None:
    assert bot_server.get("/")[0] == 404
    assert bot_server.get("/slack/events")[0] == 404  # Slack only POSTs
    assert bot_server.get("/slack/install")[0] == 404
    reply = bot_server.sender.post(b"{}", content_type="application/json", path="/elsewhere")
    assert reply.status == 404


def test_url_verification_is_answered(bot_server: BotServer) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
    reply = bot_server.sender.post(body, content_type="application/json")
    assert reply.status == 200 and reply.json() == {"challenge": "abc123"}


# -- event de-duplication ------------------------------------------------------------------------


def test_a_redelivered_event_is_processed_once_even_after_a_restart(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    probe = Probe()
    server = make_bot_server(database_url=database_url, setup=probe.setup)
    first = server.send_event(said("hello"), event_id="Ev0DUPLICATE")
    again = server.send_event(
        said("hello"), event_id="Ev0DUPLICATE", options={"retry_num": 1, "retry_reason": "http_timeout"}
    )
    assert (first.status, again.status) == (200, 200)
    server.settle()
    assert probe.texts == ["hello"]

    server.restart()  # a new process: nothing in memory remembers the event
    late = server.send_event(said("hello"), event_id="Ev0DUPLICATE", options={"retry_num": 2})
    other = server.send_event(said("another"), event_id="Ev0OTHER")
    assert (late.status, other.status) == (200, 200)
    server.settle()
    assert probe.texts == ["hello", "another"]


def test_racing_deliveries_of_one_event_are_processed_once(make_bot_server: MakeBotServer) -> None:
    probe = Probe()
    server = make_bot_server(setup=probe.setup)
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver(n: int) -> None:
        barrier.wait()
        statuses.append(server.send_event(said("once"), event_id="Ev0RACE", options={"retry_num": n}).status)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.settle()
    assert statuses == [200] * 5
    assert probe.texts == ["once"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(said("my own words", user="U0GEMBOT"), id="own-user"),
        pytest.param(said("my own words", bot_id="B0GEMBOT"), id="own-bot-id"),
        pytest.param(
            said("beep", subtype="bot_message", bot_id="B0OTHER", username="other"), id="bot_message"
        ),
        pytest.param(said("beep", bot_id="B0OTHER", bot_profile={"id": "B0OTHER"}), id="other-bot-as-user"),
        pytest.param(
            said(
                "",
                subtype="message_changed",
                message={"type": "message", "user": "U0HUMAN", "text": "edited"},
            ),
            id="message_changed",
        ),
        pytest.param(
            said("", subtype="message_deleted", deleted_ts="1700000000.000001"), id="message_deleted"
        ),
        pytest.param(said("joined", subtype="channel_join"), id="channel_join"),
    ],
)
def test_bots_edits_and_deletions_are_ignored(make_bot_server: MakeBotServer, event: dict[str, Any]) -> None:
    probe = Probe()
    server = make_bot_server(setup=probe.setup)
    assert server.send_event(event).status == 200
    assert server.send_event(said("a person", subtype="file_share", files=[])).status == 200
    server.settle()
    assert probe.texts == ["a person"]


def test_the_matcher_itself() -> None:
    assert matchers.is_from_a_person({"type": "app_mention", "user": "U1", "text": "hi"})
    assert matchers.is_from_a_person({"user": "U1", "subtype": "thread_broadcast"})
    assert not matchers.is_from_a_person({"user": "U1", "subtype": "message_changed"})
    assert not matchers.is_from_a_person({"subtype": "message_deleted"})
    assert not matchers.is_from_a_person({"user": "U1", "bot_id": "B1"})
    assert not matchers.is_from_a_person({"text": "no user"})
    assert matchers.in_a_dm({"channel": "D1"}) and matchers.in_a_dm({"channel_type": "im", "channel": "C1"})
    assert not matchers.in_a_dm({"channel": "C1", "channel_type": "channel"})


# -- configuration and secrets ---------------------------------------------------------------------


def test_building_the_app_without_credentials_names_what_is_missing(
    slack_standin: SlackStandIn, store: Any
) -> None:
    from core.settings import Settings

    settings = Settings(database_url="sqlite://", slack_api_url=slack_standin.api_url)
    deps = Deps(settings=settings, store=store, gemini=None)
    with pytest.raises(SlackNotConfigured, match="SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set"):
        build_app(deps)


def test_secrets_are_masked_in_log_lines() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(RedactingFilter(["signing-secret-value", "AIzaGeminiKey123"]))
    logger = logging.getLogger("gembot.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s and %s", "xoxb-1234-5678-abcdef", "xapp-1-A1-99-ff")
        logger.warning("secret signing-secret-value, key AIzaGeminiKey123")
        try:
            raise RuntimeError("failed with xoxp-9999-secret")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    joined = "\n".join(records)
    for secret in ("xoxb-1234", "xapp-1", "signing-secret-value", "AIzaGeminiKey123", "xoxp-9999"):
        assert secret not in joined
    assert joined.count("***") >= 5
    assert "RuntimeError" in joined  # the traceback is kept, redacted


def test_the_slack_settings_are_read_from_their_environment_names() -> None:
    from core.errors import InvalidInput
    from core.settings import Settings

    nowhere = Path("/nonexistent/.env")
    defaults = Settings.from_env({}, dotenv=nowhere)
    assert (defaults.max_image_bytes, defaults.slack_threads, defaults.event_retention_hours) == (
        20_000_000,
        8,
        24.0,
    )
    assert (defaults.http_workers, defaults.http_threads, defaults.port) == (1, 8, 3000)
    custom = Settings.from_env(
        {
            "GEMBOT_MAX_IMAGE_BYTES": "1000",
            "GEMBOT_SLACK_THREADS": "3",
            "GEMBOT_EVENT_RETENTION_HOURS": "2.5",
            "GEMBOT_HTTP_WORKERS": "4",
            "GEMBOT_HTTP_THREADS": "16",
            "PORT": "8080",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
        },
        dotenv=nowhere,
    )
    assert (custom.max_image_bytes, custom.slack_threads, custom.event_retention_hours) == (1000, 3, 2.5)
    assert (custom.http_workers, custom.http_threads, custom.port) == (4, 16, 8080)
    from bot.app import api_base_url

    assert api_base_url(custom) == "http://127.0.0.1:9/api/"  # slack_sdk needs the slash
    assert api_base_url(defaults) == "https://slack.com/api/"
    with pytest.raises(InvalidInput, match="GEMBOT_SLACK_THREADS must be at least 1"):
        Settings.from_env({"GEMBOT_SLACK_THREADS": "0"}, dotenv=nowhere)
