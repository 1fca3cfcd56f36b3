"""`gembot serve`: a real gunicorn in a subprocess, and the one-line errors before it starts."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import main
from tests import slack_fixtures
from tests.gemini_standin import GeminiStandIn
from tests.slack_harness import DEFAULT_SIGNING_SECRET, SlackSender
from tests.slack_standin import SlackStandIn

slack_standin = slack_fixtures.slack_standin
gemini_standin = slack_fixtures.gemini_standin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    # `gembot serve` configures the root logger of the process it runs in: put it back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{process.stderr.read()}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer /healthz in time")


def test_serve_http_runs_gunicorn_and_stops_on_sigterm(
    slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "GEMINI_", "GEMBOT_", "GOOGLE_"))
        },
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gembot.db'}",
        "SLACK_BOT_TOKEN": slack_standin.bot_token,
        "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
        "SLACK_API_URL": slack_standin.api_url,
        "GEMINI_API_KEY": gemini_standin.api_key,
        "GEMINI_BASE_URL": gemini_standin.base_url,
        "GEMBOT_EMBEDDER": "local",
        "GEMBOT_GEMINI_RETRIES": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--threads",
            "4",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        response_url = slack_standin.response_url()
        reply = SlackSender(url + "/slack/events").command(
            "/ask", "Are you there?", response_url=response_url, team_id=slack_standin.team_id
        )
        assert reply.status == 200
        (update,) = slack_standin.wait_for("chat.update", timeout=20)
        assert update.params["text"] == "echo: Are you there?"
        assert gemini_standin.requests("generate")
        forged = SlackSender(url + "/slack/events", "wrong-secret").command("/ask", "x")
        assert forged.status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"gunicorn did not stop on SIGTERM:\n{stderr}") from None
    assert process.returncode == 0, stderr
    assert "Booting worker" in stderr  # gunicorn, not a development server
    for secret in (slack_standin.bot_token, DEFAULT_SIGNING_SECRET, gemini_standin.api_key):
        assert secret not in stderr


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
