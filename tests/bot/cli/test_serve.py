"""`gembot serve`: a real gunicorn in a subprocess, and the one-line errors before it starts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.support.gemini import GeminiStandIn
from tests.support.servers import GembotProcess, server_env
from tests.support.slack_harness import DEFAULT_SIGNING_SECRET, SlackSender
from tests.support.slack_standin import SlackStandIn


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    # `gembot serve` configures the root logger of the process it runs in: put it back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_http_runs_gunicorn_and_stops_on_sigterm(
    slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    env = server_env(slack_standin, gemini_standin, f"sqlite:///{tmp_path / 'gembot.db'}")
    server = GembotProcess(env, log_dir=tmp_path, workers=2, threads=4).start()
    try:
        server.wait_healthy()
        response_url = slack_standin.response_url()
        reply = server.sender.command(
            "/ask", "Are you there?", response_url=response_url, team_id=slack_standin.team_id
        )
        assert reply.status == 200
        (answer,) = slack_standin.wait_for_streams(timeout=20)
        assert answer["text"] == "echo: Are you there?"
        assert gemini_standin.requests("generate")
        forged = SlackSender(server.events_url, "wrong-secret").command("/ask", "x")
        assert forged.status == 401
    finally:
        code = server.stop()
    log = server.log()
    assert code == 0, log
    assert "Booting worker" in log  # gunicorn, not a development server
    for secret in (slack_standin.bot_token, DEFAULT_SIGNING_SECRET, gemini_standin.api_key):
        assert secret not in log


def test_serve_without_slack_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    assert main(["serve", "--http"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set: copy them from the Slack app's "
        "settings (see the README)"
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert main(["serve", "--socket"]) == 1
    assert "SLACK_APP_TOKEN is not set" in capsys.readouterr().err


def test_serve_with_a_token_slack_refuses_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    slack_standin: SlackStandIn,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-the-right-one")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("SLACK_API_URL", slack_standin.api_url)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["serve"]) == 1  # HTTP: no app token
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "error: Slack refused SLACK_BOT_TOKEN (invalid_auth): check it in the app's settings"
    )
    assert "xoxb-not-the-right-one" not in err
