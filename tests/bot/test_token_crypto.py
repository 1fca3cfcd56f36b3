"""Slack tokens encrypted at rest (`bot.token_crypto`): what the OAuth tables hold after a real
install, legacy plain-text rows, a key that does not fit, key changes, and token rotation, on
SQLite and PostgreSQL, through the running bot and the Slack stand-in."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Table, update

from bot.oauth import NOT_INSTALLED, installation_store
from bot.token_crypto import PREFIX, TokenCipher, derive_key
from core.errors import InvalidInput
from core.settings import Secret, Settings
from core.store.db import make_engine
from tests.support.oauth_support import BOTS, INSTALLATIONS, install, oauth_env, rows, stored_token
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackStandIn

ALPHA, BETA = "T0ALPHA", "T0BETA"
NOWHERE = Path("/nonexistent/.env")


def ask(server: BotServer, team: str, question: str = "What is 2+2?") -> Any:
    return server.send_command("/ask", question, team_id=team)


def answered_with(server: BotServer, team: str, count: int = 1) -> str:
    """Ask in `team` and return the token the answer (the `count`-th chat.update) was sent with."""
    reply = ask(server, team)
    assert (reply.status, reply.body) == (200, "")
    return str(server.slack.wait_for("chat.update", count=count)[-1].token)


def refused(server: BotServer, team: str) -> None:
    """Asking in `team` gets the "not installed" answer, and Gemini is never called."""
    reply = ask(server, team)
    assert reply.status == 200
    (refusal,) = server.slack.wait_for_response(reply.sent["response_url"])
    assert refusal["text"] == NOT_INSTALLED
    assert server.gemini is not None and server.gemini.requests() == []


def set_raw(server: BotServer, table: Table, team_id: str, **values: Any) -> None:
    """Write columns of a workspace's rows directly, behind the store's back."""
    assert server.deps is not None
    with server.deps.store.engine.begin() as conn:
        conn.execute(update(table).where(table.c.team_id == team_id).values(**values))


def stored_tokens(server: BotServer, team_id: str) -> list[str]:
    """Every non-empty token column of the workspace's rows, as stored."""
    found = []
    for table in (INSTALLATIONS, BOTS):
        for row in rows(server, table, team_id=team_id):
            found += [v for k, v in row.items() if k.endswith("_token") and v]
    return found


def gembot_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gembot.oauth" and r.levelno >= logging.ERROR]


# -- after a real install --------------------------------------------------------------------------


def test_an_install_stores_the_token_encrypted_with_the_configured_key(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    key = Fernet.generate_key().decode()
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin, GEMBOT_TOKEN_KEY=key))
    token = install(server, ALPHA).token

    stored = stored_tokens(server, ALPHA)
    assert len(stored) == 2  # slack_installations.bot_token and slack_bots.bot_token
    for value in stored:
        assert value.startswith(PREFIX) and token not in value
        assert stored_token(value, slack_standin.client_secret, key) == token
        with pytest.raises(InvalidToken):  # GEMBOT_TOKEN_KEY, not the key from the client secret
            stored_token(value, slack_standin.client_secret)

    assert answered_with(server, ALPHA) == token
    # Revoking the bot token still deletes the workspace's rows.
    revoke_bot = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0GEMBOT"]}}
    assert server.send_event(revoke_bot, team_id=ALPHA).status == 200
    server.settle()
    assert rows(server, INSTALLATIONS) == [] and rows(server, BOTS) == []


# -- rows from before encryption -------------------------------------------------------------------


def test_a_plain_text_row_is_read_then_encrypted_at_the_next_start(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    token = install(server, ALPHA).token
    # What Gembot stored before this change: the token in clear, in both tables.
    set_raw(server, INSTALLATIONS, ALPHA, bot_token=token)
    set_raw(server, BOTS, ALPHA, bot_token=token)
    assert stored_tokens(server, ALPHA) == [token, token]

    assert answered_with(server, ALPHA) == token

    server.restart()
    stored = stored_tokens(server, ALPHA)
    assert len(stored) == 2 and all(v.startswith(PREFIX) and token not in v for v in stored)
    assert {stored_token(v, slack_standin.client_secret) for v in stored} == {token}
    assert answered_with(server, ALPHA) == token


def test_a_legacy_row_is_encrypted_when_it_is_saved_again(
    slack_standin: SlackStandIn, database_url: str
) -> None:
    settings = Settings.from_env(oauth_env(slack_standin), dotenv=NOWHERE)
    engine = make_engine(database_url)
    try:
        # Written by slack_sdk's own store, as Gembot did before encryption.
        legacy = SQLAlchemyInstallationStore(client_id=slack_standin.client_id, engine=engine)
        legacy.save(Installation(app_id="A0GEMBOT", team_id=ALPHA, bot_token="xoxb-legacy-1", user_id="U0I"))
        store = installation_store(settings, engine)

        found = store.find_installation(enterprise_id=None, team_id=ALPHA)
        assert found is not None and found.bot_token == "xoxb-legacy-1"
        bot = store.find_bot(enterprise_id=None, team_id=ALPHA)
        assert bot is not None and bot.bot_token == "xoxb-legacy-1"

        store.save(found)
        with engine.connect() as conn:
            stored = [r.bot_token for t in (INSTALLATIONS, BOTS) for r in conn.execute(t.select())]
        assert len(stored) == 2 and all(v.startswith(PREFIX) for v in stored)
        assert found.bot_token == "xoxb-legacy-1"  # the caller's object is left as it was
        again = store.find_installation(enterprise_id=None, team_id=ALPHA)
        assert again is not None and again.bot_token == "xoxb-legacy-1"
    finally:
        engine.dispose()


# -- a key that does not fit -----------------------------------------------------------------------


def test_a_wrong_key_reads_as_not_installed_with_one_log_line(
    make_bot_server: MakeBotServer,
    slack_standin: SlackStandIn,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = make_bot_server(database_url=database_url, env=oauth_env(slack_standin, GEMBOT_TOKEN_KEY=right))
    token = install(first, ALPHA).token
    first.stop()

    # The store on its own: nothing found, one line saying why, with neither the token nor a key.
    settings = Settings.from_env(oauth_env(slack_standin, GEMBOT_TOKEN_KEY=wrong), dotenv=NOWHERE)
    engine = make_engine(database_url)
    try:
        store = installation_store(settings, engine)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert store.find_installation(enterprise_id=None, team_id=ALPHA) is None
        (line,) = caplog.records
        assert line.name == "gembot.oauth" and line.levelno == logging.ERROR and line.exc_info is None
        message = line.getMessage()
        assert "\n" not in message and ALPHA in message and "cannot be decrypted" in message
        for secret in (token, right, wrong, slack_standin.client_secret):
            assert secret not in message
        assert store.find_bot(enterprise_id=None, team_id=ALPHA) is None
    finally:
        engine.dispose()

    # The bot: the start-up check names the unreadable rows (and leaves them), requests from that
    # workspace get "not installed", and uninstalling still deletes the rows.
    caplog.clear()
    second = make_bot_server(database_url=database_url, env=oauth_env(slack_standin, GEMBOT_TOKEN_KEY=wrong))
    assert len(gembot_errors(caplog)) == 2  # its slack_installations and slack_bots rows
    assert all(token not in r.getMessage() and r.exc_info is None for r in caplog.records)
    refused(second, ALPHA)
    assert all(wrong not in r.getMessage() and token not in r.getMessage() for r in caplog.records)
    assert len(rows(second, INSTALLATIONS, team_id=ALPHA)) == 1

    event = second.send_event({"type": "app_uninstalled", "event_ts": "1700000000.000200"}, team_id=ALPHA)
    assert event.status == 200
    second.settle()
    assert rows(second, INSTALLATIONS) == [] and rows(second, BOTS) == []


# -- changing keys ---------------------------------------------------------------------------------


def test_setting_a_key_later_and_rotating_it_lose_no_workspace(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    token = install(server, ALPHA).token
    assert {stored_token(v, slack_standin.client_secret) for v in stored_tokens(server, ALPHA)} == {token}
    server.stop()

    # GEMBOT_TOKEN_KEY set after installs made with the derived key: read, and re-encrypted at start.
    first = Fernet.generate_key().decode()
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin, GEMBOT_TOKEN_KEY=first))
    assert {stored_token(v, "", first) for v in stored_tokens(server, ALPHA)} == {token}
    assert answered_with(server, ALPHA) == token
    server.stop()

    # From now on the client secret is not needed to read them: it can be rotated.
    slack_standin.client_secret = "a-new-client-secret"
    second = Fernet.generate_key().decode()
    env = oauth_env(slack_standin, GEMBOT_TOKEN_KEY=f"{second},{first}")
    server = make_bot_server(database_url=database_url, env=env)
    assert {stored_token(v, "", second) for v in stored_tokens(server, ALPHA)} == {token}
    assert answered_with(server, ALPHA) == token
    server.stop()

    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin, GEMBOT_TOKEN_KEY=second))
    assert answered_with(server, ALPHA) == token


# -- token rotation --------------------------------------------------------------------------------


def test_token_rotation_saves_the_new_tokens_encrypted(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    # A token that expires within Bolt's two-hour margin: the next request rotates it.
    old = install(server, ALPHA, rotating=True, expires_in=60).token
    assert old.startswith("xoxe.xoxb-") and len(old) > 150
    (installation,) = rows(server, INSTALLATIONS)
    old_refresh = stored_token(installation["bot_refresh_token"], slack_standin.client_secret)
    assert old_refresh.startswith("xoxe-1-")
    # Longer than slack_sdk's VARCHAR(200): PostgreSQL takes them since migration 0007.
    assert len(installation["bot_token"]) > 200 and len(installation["bot_refresh_token"]) > 200
    slack_standin.clear_calls()

    new = answered_with(server, ALPHA)
    (refresh,) = slack_standin.calls("oauth.v2.access")
    assert (refresh.params["grant_type"], refresh.params["refresh_token"]) == ("refresh_token", old_refresh)
    assert new == slack_standin.token_of(ALPHA) and new != old

    stored = stored_tokens(server, ALPHA)
    assert len(stored) == 4  # token and refresh token, in both tables
    assert all(v.startswith(PREFIX) and new not in v and old_refresh not in v for v in stored)
    decrypted = {stored_token(v, slack_standin.client_secret) for v in stored}
    assert new in decrypted and old not in decrypted and old_refresh not in decrypted

    # The new token is good for twelve hours: the next request uses it as it is.
    assert answered_with(server, ALPHA, count=2) == new
    assert len(slack_standin.calls("oauth.v2.access")) == 1


# -- the setting -----------------------------------------------------------------------------------


def test_the_key_setting() -> None:
    assert Settings.from_env({}, dotenv=NOWHERE).token_keys == ()
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = Settings.from_env({"GEMBOT_TOKEN_KEY": f" {one} , {two} "}, dotenv=NOWHERE)
    assert settings.token_keys == (Secret(one), Secret(two))
    assert one not in repr(settings) and one not in str(settings) and one not in settings.model_dump_json()
    malformed = r"^(key 2 of 2 in )?GEMBOT_TOKEN_KEY( is)? not a Fernet key"
    for bad in ("not-a-key", one[:-4], one + "AAAA", f"{one},{one[:20]}"):
        with pytest.raises(InvalidInput, match=malformed) as err:
            Settings.from_env({"GEMBOT_TOKEN_KEY": bad}, dotenv=NOWHERE)
        assert bad.split(",")[-1] not in str(err.value) and "\n" not in str(err.value)

    # What the bot derives without it is a Fernet key of its own, tied to the client secret.
    derived = derive_key("secret")
    assert derived == derive_key("secret") != derive_key("another secret")
    cipher = TokenCipher([derived])
    assert cipher.decrypt(cipher.encrypt("xoxb-1")) == "xoxb-1"


def test_a_malformed_key_stops_the_start_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "secret",
        "SLACK_SIGNING_SECRET": "signing",
        "GEMBOT_TOKEN_KEY": "hunter2hunter2",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import main; raise SystemExit(main())", "serve", "--http"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: GEMBOT_TOKEN_KEY is not a Fernet key")
    assert done.stderr.count("\n") == 1 and "hunter2" not in done.stderr
