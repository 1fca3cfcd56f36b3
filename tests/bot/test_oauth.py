"""OAuth install in several workspaces: Bolt's real flow over HTTP, slack_sdk's stores in Gembot's
database, each workspace answered with its own token, uninstall and revocation forgetting it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import SlackNotConfigured, build_app, require
from bot.oauth import NOT_INSTALLED
from bot.token_crypto import PREFIX
from core.settings import SLACK_BOT_SCOPES, Settings
from handlers.deps import Deps
from tests.support.oauth_support import (
    BOTS,
    INSTALLATIONS,
    STATES,
    fetch,
    install,
    oauth_env,
    rows,
    start_install,
    stored_token,
)
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackStandIn

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
ALPHA, BETA = "T0ALPHA", "T0BETA"


@pytest.fixture
def oauth_server(make_bot_server: MakeBotServer, slack_standin: SlackStandIn) -> BotServer:
    return make_bot_server(env=oauth_env(slack_standin))


def ask(server: BotServer, team: str, question: str = "What is 2+2?") -> Any:
    return server.send_command("/ask", question, team_id=team)


def answered_with(server: BotServer, token: str) -> list[str]:
    """The methods the bot called on Slack with `token` so far."""
    return [c.method for c in server.slack.calls() if c.token == token]


# -- the install flow ------------------------------------------------------------------------------


def test_install_stores_the_workspace_and_its_requests_use_its_token(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))

    started = start_install(server)
    assert started.authorize_url.startswith("https://slack.com/oauth/v2/authorize?")
    assert started.query["client_id"] == slack_standin.client_id
    assert started.query["scope"].split(",") == list(SLACK_BOT_SCOPES)
    assert started.cookie == f"slack-app-oauth-state={started.state}"
    assert [r["state"] for r in rows(server, STATES)] == [started.state]

    code = slack_standin.approve_install(ALPHA, team_name="Alpha", scope=started.query["scope"])
    callback = fetch(
        f"{server.url}/slack/oauth_redirect?code={code}&state={started.state}", cookie=started.cookie
    )
    assert callback.status == 200
    (exchange,) = slack_standin.calls("oauth.v2.access")
    assert exchange.params["code"] == code
    credentials = f"{slack_standin.client_id}:{slack_standin.client_secret}".encode()
    assert exchange.headers["authorization"] == "Basic " + base64.b64encode(credentials).decode()
    assert rows(server, STATES) == []  # the state is used up

    token = slack_standin.token_of(ALPHA)
    assert token is not None and token != slack_standin.bot_token
    (installation,) = rows(server, INSTALLATIONS)
    assert (installation["team_id"], installation["team_name"]) == (ALPHA, "Alpha")
    assert installation["client_id"] == slack_standin.client_id
    assert installation["bot_scopes"] == ",".join(SLACK_BOT_SCOPES)
    # The token is stored encrypted (tests/bot/test_token_crypto.py), in both tables.
    (bot,) = rows(server, BOTS)
    for stored in (installation["bot_token"], bot["bot_token"]):
        assert stored.startswith(PREFIX) and token not in stored
        assert stored_token(stored, slack_standin.client_secret) == token

    reply = ask(server, ALPHA)
    assert (reply.status, reply.body) == (200, "")
    (update,) = slack_standin.wait_for("chat.update")
    assert update.token == token
    assert {c.token for c in slack_standin.calls() if c.method.startswith("chat.")} == {token}
    assert server.gemini is not None and len(server.gemini.requests("generate")) == 1

    # Bolt checks a token with auth.test once per process, not before every request.
    checks = len(slack_standin.calls("auth.test"))
    ask(server, ALPHA, "And 3+3?")
    slack_standin.wait_for("chat.update", count=2)
    assert len(slack_standin.calls("auth.test")) == checks


def test_the_redirect_refuses_a_foreign_browser_a_replayed_state_and_a_bad_code(
    oauth_server: BotServer, slack_standin: SlackStandIn
) -> None:
    started = start_install(oauth_server)
    redirect = f"{oauth_server.url}/slack/oauth_redirect"
    code = slack_standin.approve_install(ALPHA)

    # Another browser (no state cookie) cannot finish someone else's install.
    assert fetch(f"{redirect}?code={code}&state={started.state}").status == 400
    # A state this bot never issued.
    assert (
        fetch(f"{redirect}?code={code}&state=made-up", cookie="slack-app-oauth-state=made-up").status == 401
    )
    # The person cancelled on Slack's page.
    assert fetch(f"{redirect}?error=access_denied&state={started.state}", cookie=started.cookie).status == 200
    assert slack_standin.calls("oauth.v2.access") == []

    assert fetch(f"{redirect}?code=bogus&state={started.state}", cookie=started.cookie).status == 401
    # The state was spent on the bad code: the real code cannot ride on it any more.
    assert fetch(f"{redirect}?code={code}&state={started.state}", cookie=started.cookie).status == 401
    assert rows(oauth_server, INSTALLATIONS) == [] and rows(oauth_server, BOTS) == []


def test_a_reinstall_replaces_the_token(oauth_server: BotServer, slack_standin: SlackStandIn) -> None:
    first = install(oauth_server, ALPHA)
    slack_standin.revoke(ALPHA)  # Slack retires the old token when the app is installed again
    second = install(oauth_server, ALPHA)
    assert second.token != first.token
    ask(oauth_server, ALPHA)
    (update,) = slack_standin.wait_for("chat.update")
    assert update.token == second.token


# -- GEMBOT_ALLOWED_TEAMS --------------------------------------------------------------------------


def test_an_install_outside_the_allowed_teams_is_refused_and_its_token_revoked(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn
) -> None:
    server = make_bot_server(env=oauth_env(slack_standin, GEMBOT_ALLOWED_TEAMS=f"{ALPHA.lower()}, T0OTHER"))
    started = start_install(server)
    code = slack_standin.approve_install(BETA, team_name="Beta", scope=started.query["scope"])
    callback = fetch(
        f"{server.url}/slack/oauth_redirect?code={code}&state={started.state}", cookie=started.cookie
    )
    (exchange,) = slack_standin.calls("oauth.v2.access")
    token = exchange.response["access_token"]  # what Slack issued for the refused workspace
    assert callback.status == 403
    assert "not available for this workspace" in callback.body
    assert rows(server, INSTALLATIONS) == [] and rows(server, BOTS) == []
    (revoked,) = slack_standin.calls("auth.revoke")
    assert revoked.token == token and revoked.response["revoked"] is True
    assert slack_standin.token_of(BETA) is None  # the token Slack issued no longer works

    install(server, ALPHA)  # an allowed workspace installs as before (lower case in the setting)
    assert [r["team_id"] for r in rows(server, INSTALLATIONS)] == [ALPHA]


def test_a_request_from_outside_the_allowed_teams_is_refused_though_installed(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    before = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    install(before, ALPHA)
    install(before, BETA)
    after = make_bot_server(
        database_url=database_url, env=oauth_env(slack_standin, GEMBOT_ALLOWED_TEAMS=ALPHA)
    )
    slack_standin.clear_calls()

    refused = ask(after, BETA)
    assert refused.status == 200
    (refusal,) = slack_standin.wait_for_response(refused.sent["response_url"])
    assert refusal["text"] == NOT_INSTALLED
    assert not slack_standin.calls("chat.postMessage")
    assert after.gemini is not None and after.gemini.requests("generate") == []

    answered = ask(after, ALPHA)
    assert answered.status == 200
    slack_standin.wait_for("chat.update")
    assert len(after.gemini.requests("generate")) == 1


# -- workspaces with no installation ---------------------------------------------------------------


def test_a_workspace_without_an_installation_is_refused_without_a_500(
    oauth_server: BotServer, slack_standin: SlackStandIn
) -> None:
    install(oauth_server, ALPHA)
    slack_standin.clear_calls()

    reply = ask(oauth_server, "T0NOBODY")
    assert reply.status == 200
    (refusal,) = slack_standin.wait_for_response(reply.sent["response_url"])
    assert refusal["text"] == NOT_INSTALLED
    event = oauth_server.send_event(
        {
            "type": "app_mention",
            "user": "U0HUMAN",
            "text": "<@U0GEMBOT> hi",
            "channel": "C0GENERAL",
            "ts": "1700000000.000100",
        },
        team_id="T0NOBODY",
    )
    assert event.status == 200
    oauth_server.settle()
    assert [c.method for c in slack_standin.calls()] == ["response_url"]
    assert oauth_server.gemini is not None and oauth_server.gemini.requests() == []


# -- uninstall and revocation ----------------------------------------------------------------------


def uninstalled() -> dict[str, Any]:
    return {"type": "app_uninstalled", "event_ts": "1700000000.000200"}


def test_app_uninstalled_deletes_that_workspace_only(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    install(server, ALPHA)
    beta = install(server, BETA)
    assert {r["team_id"] for r in rows(server, INSTALLATIONS)} == {ALPHA, BETA}

    event = server.send_event(uninstalled(), team_id=ALPHA)
    again = server.send_event(
        uninstalled(), team_id=ALPHA, event_id=event.sent["event_id"], options={"retry_num": 1}
    )
    assert (event.status, again.status) == (200, 200)
    server.settle()
    assert rows(server, INSTALLATIONS, team_id=ALPHA) == [] and rows(server, BOTS, team_id=ALPHA) == []
    assert len(rows(server, INSTALLATIONS, team_id=BETA)) == 1 and len(rows(server, BOTS, team_id=BETA)) == 1

    slack_standin.clear_calls()
    refused = ask(server, ALPHA)
    (refusal,) = slack_standin.wait_for_response(refused.sent["response_url"])
    assert refusal["text"] == NOT_INSTALLED
    ask(server, BETA)
    (update,) = slack_standin.wait_for("chat.update")
    assert update.token == beta.token
    assert {c.token for c in slack_standin.calls() if c.method.startswith("chat.")} == {beta.token}


def test_a_revoked_bot_token_is_deleted(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    install(server, ALPHA)
    ask(server, ALPHA)  # the token is in use, and its auth.test remembered
    slack_standin.wait_for("chat.update")

    # A user token revoked (Gembot asks for none, but Slack may say so): the bot keeps working.
    revoke_user = {"type": "tokens_revoked", "tokens": {"oauth": ["U0INSTALLER"], "bot": []}}
    assert server.send_event(revoke_user, team_id=ALPHA).status == 200
    server.settle()
    assert rows(server, INSTALLATIONS, team_id=ALPHA) == []
    assert len(rows(server, BOTS, team_id=ALPHA)) == 1
    ask(server, ALPHA)
    slack_standin.wait_for("chat.update", count=2)

    revoke_bot = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0GEMBOT"]}}
    assert server.send_event(revoke_bot, team_id=ALPHA).status == 200
    server.settle()
    assert rows(server, INSTALLATIONS) == [] and rows(server, BOTS) == []
    refused = ask(server, ALPHA)
    assert refused.status == 200
    (refusal,) = slack_standin.wait_for_response(refused.sent["response_url"])
    assert refusal["text"] == NOT_INSTALLED
    assert len(slack_standin.calls("chat.update")) == 2


# -- configuration ---------------------------------------------------------------------------------


def test_the_default_scopes_are_the_manifests() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert list(SLACK_BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]
    nowhere = Path("/nonexistent/.env")
    assert Settings.from_env({}, dotenv=nowhere).slack_scopes == SLACK_BOT_SCOPES
    custom = Settings.from_env({"SLACK_SCOPES": "commands, chat:write,"}, dotenv=nowhere)
    assert custom.slack_scopes == ("commands", "chat:write")


def settings_with(**env: str) -> Settings:
    return Settings.from_env({"SLACK_SIGNING_SECRET": "s", **env}, dotenv=Path("/nonexistent/.env"))


def test_the_modes_are_checked_before_anything_starts() -> None:
    oauth = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "secret"}
    require(settings_with(**oauth))
    require(settings_with(SLACK_BOT_TOKEN="xoxb-1"))
    with pytest.raises(SlackNotConfigured, match="both set"):
        require(settings_with(SLACK_BOT_TOKEN="xoxb-1", **oauth))
    with pytest.raises(SlackNotConfigured, match=r"^SLACK_CLIENT_SECRET is not set"):
        require(settings_with(SLACK_CLIENT_ID="1.2"))
    with pytest.raises(SlackNotConfigured, match=r"^SLACK_CLIENT_ID is not set"):
        require(settings_with(SLACK_CLIENT_SECRET="secret"))
    with pytest.raises(SlackNotConfigured, match="needs HTTP mode"):
        require(settings_with(SLACK_APP_TOKEN="xapp-1", **oauth), signing_secret=False, app_token=True)


def test_building_the_oauth_app_calls_slack_for_nothing(slack_standin: SlackStandIn, store: Any) -> None:
    settings = settings_with(
        SLACK_CLIENT_ID=slack_standin.client_id,
        SLACK_CLIENT_SECRET=slack_standin.client_secret,
        SLACK_API_URL=slack_standin.api_url,
    )
    app = build_app(Deps(settings=settings, store=store, gemini=None))
    assert app.oauth_flow is not None
    assert (app.oauth_flow.install_path, app.oauth_flow.redirect_uri_path) == (
        "/slack/install",
        "/slack/oauth_redirect",
    )
    assert slack_standin.calls() == []
