"""OAuth install in scenario tests: the settings of a multi-workspace bot, and the whole install
flow a person goes through (install page → Slack's approval → redirect with a code), driven over
HTTP against a running `BotServer` and the Slack stand-in.
"""

from __future__ import annotations

import html
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import Table, select

from bot.token_crypto import PREFIX, derive_key
from core.store.schema import slack_bots, slack_installations, slack_oauth_states
from tests.support.slack_fixtures import BotServer
from tests.support.slack_standin import SlackStandIn

__all__ = ["Fetched", "Installed", "fetch", "install", "oauth_env", "rows", "start_install", "stored_token"]


def oauth_env(slack: SlackStandIn, **extra: str) -> dict[str, str]:
    """The settings of an OAuth-installed bot: client id and secret, and no SLACK_BOT_TOKEN."""
    return {
        "SLACK_BOT_TOKEN": "",
        "SLACK_CLIENT_ID": slack.client_id,
        "SLACK_CLIENT_SECRET": slack.client_secret,
        **extra,
    }


@dataclass
class Fetched:
    status: int
    headers: Any
    body: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, *, cookie: str | None = None) -> Fetched:
    """GET `url` as a browser would, without following redirects."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=10) as response:
            return Fetched(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Fetched(error.code, error.headers, error.read().decode())


@dataclass
class Started:
    """What the install page gave the browser: the link to Slack and the state cookie."""

    authorize_url: str
    query: dict[str, str]
    cookie: str

    @property
    def state(self) -> str:
        return self.query["state"]


def start_install(server: BotServer) -> Started:
    """GET /slack/install: the page with the "Add to Slack" link, and the state cookie."""
    page = fetch(server.url + "/slack/install")
    assert page.status == 200, page.body
    link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.body)
    assert link, page.body
    url = html.unescape(link.group(1))
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    cookie = page.headers.get("Set-Cookie", "").split(";")[0]
    return Started(authorize_url=url, query=query, cookie=cookie)


@dataclass
class Installed:
    team_id: str
    token: str
    callback: Fetched


def install(server: BotServer, team_id: str, **approval: Any) -> Installed:
    """The whole install of the app in `team_id`; returns the bot token Slack gave it."""
    started = start_install(server)
    code = server.slack.approve_install(team_id, scope=started.query["scope"], **approval)
    callback = fetch(
        server.url + "/slack/oauth_redirect?" + urlencode({"code": code, "state": started.state}),
        cookie=started.cookie,
    )
    assert callback.status == 200, callback.body
    token = server.slack.token_of(team_id)
    assert token is not None
    return Installed(team_id, token, callback)


def rows(server: BotServer, table: Table, **where: Any) -> list[dict[str, Any]]:
    """The rows of one of slack_sdk's tables (optionally filtered by column values), as dicts."""
    assert server.deps is not None
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with server.deps.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def stored_token(stored: str, client_secret: str, key: str | bytes | None = None) -> str:
    """Decrypt a stored token column by hand: with `key`, or the key derived from `client_secret`."""
    assert stored.startswith(PREFIX), "not an encrypted token"
    fernet = Fernet(key if key is not None else derive_key(client_secret))
    return fernet.decrypt(stored[len(PREFIX) :]).decode()


INSTALLATIONS, BOTS, STATES = slack_installations, slack_bots, slack_oauth_states
