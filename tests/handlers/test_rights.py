"""`handlers.rights` on its own: GEMBOT_ADMINS, users.info roles, the cache, and Slack failing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from core.errors import InvalidInput
from core.settings import Settings
from handlers.rights import ADMINS_ONLY, AUTHOR_OR_ADMIN, Rights
from tests.support.slack_standin import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


def client_for(slack: SlackStandIn) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


def settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv=Path("/nonexistent/.env"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_settings_read_curation_and_admins() -> None:
    read = settings(GEMBOT_CURATION="Admins", GEMBOT_ADMINS="u0boss, U0CHIEF  W0GRID")
    assert read.curation == "admins" and read.admins == {"U0BOSS", "U0CHIEF", "W0GRID"}
    assert settings().curation == "anyone" and settings().admins == frozenset()
    with pytest.raises(InvalidInput, match="GEMBOT_CURATION must be 'anyone' or 'admins'"):
        settings(GEMBOT_CURATION="everyone")


def test_limits_and_channels_settings() -> None:
    read = settings(
        GEMBOT_USER_DAILY_LIMIT="50", GEMBOT_TEAM_DAILY_LIMIT="1000", GEMBOT_ALLOWED_CHANNELS="c0a,C0B"
    )
    assert (read.user_daily_limit, read.team_daily_limit) == (50, 1000)
    assert read.allowed_channels == {"C0A", "C0B"}
    unset = settings()
    assert (unset.user_daily_limit, unset.team_daily_limit, unset.allowed_channels) == (None, None, None)
    with pytest.raises(InvalidInput, match="leave it unset for no limit"):
        settings(GEMBOT_USER_DAILY_LIMIT="0")


def test_the_users_info_answer_is_cached_for_a_while(slack: SlackStandIn) -> None:
    slack.add_user("U0ADMIN", is_admin=True)
    clock = Clock()
    rights = Rights(settings(GEMBOT_CURATION="admins"), ttl=300, clock=clock)
    client = client_for(slack)
    assert rights.curation_refusal(client, "T1", "U0ADMIN") is None
    assert rights.curation_refusal(client, "T1", "U0PLAIN") == ADMINS_ONLY
    assert len(slack.calls("users.info")) == 2
    slack.add_user("U0PLAIN", is_owner=True)  # promoted: seen once the cached answer expires
    clock.now += 299
    assert rights.curation_refusal(client, "T1", "U0PLAIN") == ADMINS_ONLY
    clock.now += 2
    assert rights.curation_refusal(client, "T1", "U0PLAIN") is None
    assert len(slack.calls("users.info")) == 3


def test_when_slack_cannot_say_the_user_is_not_an_admin_and_it_is_asked_again(slack: SlackStandIn) -> None:
    slack.add_user("U0ADMIN", is_admin=True)
    rights = Rights(settings(GEMBOT_CURATION="admins"))
    client = client_for(slack)
    slack.fail_next("users.info", error="missing_scope")
    assert rights.curation_refusal(client, "T1", "U0ADMIN") == ADMINS_ONLY
    assert rights.curation_refusal(client, "T1", "U0ADMIN") is None


def test_removal_rules(slack: SlackStandIn) -> None:
    client = client_for(slack)
    anyone = Rights(settings())
    assert anyone.curation_refusal(client, "T1", "U0ANY") is None
    assert anyone.removal_refusal(client, "T1", "U0ANA", author="U0ANA", added_by=None) is None
    assert anyone.removal_refusal(client, "T1", "U0ANA", author=None, added_by="U0ANA") is None
    assert anyone.removal_refusal(client, "T1", "U0BO", author="U0ANA", added_by=None) == AUTHOR_OR_ADMIN
    assert anyone.removal_refusal(client, "T1", None, author=None, added_by=None) == AUTHOR_OR_ADMIN
    admins = Rights(settings(GEMBOT_CURATION="admins", GEMBOT_ADMINS="U0BOSS"))
    assert admins.removal_refusal(client, "T1", "U0ANA", author="U0ANA", added_by="U0ANA") == ADMINS_ONLY
    assert admins.removal_refusal(client, "T1", "U0BOSS", author="U0ANA", added_by=None) is None
