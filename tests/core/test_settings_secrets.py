"""The settings never show a secret: not in `repr()`, not in a log line the server writes."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet

from bot.logs import configure_server_logging
from core.errors import InvalidInput
from core.settings import Settings

TOKEN_KEY = Fernet.generate_key().decode()
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-111-222-botsecretvalue",
    "SLACK_SIGNING_SECRET": "signing-secret-value-0123",
    "SLACK_APP_TOKEN": "xapp-1-A111-appsecretvalue",
    "SLACK_CLIENT_SECRET": "client-secret-value-4567",
    "GEMINI_API_KEY": "AIzaGeminiKeyValue89",
    "GEMBOT_TOKEN_KEY": TOKEN_KEY,
}
DB_PASSWORD = "db-password-hunter2"
ENV = {**SECRETS, "DATABASE_URL": f"postgresql+psycopg://gembot:{DB_PASSWORD}@db.internal:5432/gembot"}


def test_repr_shows_no_password_key_or_token() -> None:
    shown = repr(Settings.from_env(ENV, dotenv=None))
    for value in [*SECRETS.values(), DB_PASSWORD]:
        assert value not in shown
    # What is not secret still shows, so the repr stays useful.
    assert "db.internal" in shown and "gembot" in shown


def test_secrets_lists_every_secret_the_settings_hold() -> None:
    held = set(Settings.from_env(ENV, dotenv=None).secrets())
    assert held == {*SECRETS.values(), DB_PASSWORD}


@pytest.mark.parametrize("url", ["sqlite:///gembot.db", "not a url at all"])
def test_a_url_without_a_password_adds_none(url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": url}, dotenv=None)
    assert settings.secrets() == []
    assert "Settings(" in repr(settings)


def test_server_logging_masks_every_secret_of_the_settings() -> None:
    settings = Settings.from_env(ENV, dotenv=None)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_server_logging(settings)
        stream = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        log = logging.getLogger("gembot.test")
        for name, value in [*SECRETS.items(), ("DATABASE_URL", DB_PASSWORD)]:
            log.warning("%s is %s", name, value)
        try:
            raise RuntimeError(f"connect failed for {ENV['DATABASE_URL']}")
        except RuntimeError:
            log.exception("while connecting")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    written = stream.getvalue()
    assert "SLACK_CLIENT_SECRET is ***" in written
    for value in [*SECRETS.values(), DB_PASSWORD]:
        assert value not in written


def test_coverage_and_escalation_settings_are_checked() -> None:
    assert Settings.from_env({}, dotenv=None).escalate is True
    assert Settings.from_env({"GEMBOT_ESCALATE": "off"}, dotenv=None).escalate is False
    assert Settings.from_env({"GEMBOT_TARGET_COVERAGE": "0.9"}, dotenv=None).target_coverage == 0.9
    for env, words in (
        ({"GEMBOT_TARGET_COVERAGE": "1"}, "between 0 and 1"),
        ({"GEMBOT_ESCALATE": "sometimes"}, "'on' or 'off'"),
    ):
        with pytest.raises(InvalidInput, match=words):
            Settings.from_env(env, dotenv=None)
