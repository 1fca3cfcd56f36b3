"""Workspaces see only their own data: single-workspace mode turns every other workspace away before
anything is read, and OAuth-installed workspaces that share channel and user ids share nothing."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import BoltContext

from bot.background import Housekeeping, JobResumer, RequestResumer, Retuner
from bot.workspaces import ANOTHER_WORKSPACE, OneWorkspace
from core.store import ExampleInput, Store
from handlers.scope import workspace_key, workspace_of
from tests.support.label_support import BILLING, SHIPPING, texts_of
from tests.support.oauth_support import install, oauth_env
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackStandIn

OTHER = "T0OTHER"
ALPHA, BETA = "T0ALPHA", "T0BETA"
CHANNEL, USER = "C0GENERAL", "U0HUMAN"  # the same ids in every workspace of these tests
STORE_METHODS = [
    name
    for name, value in vars(Store).items()
    if callable(value) and not name.startswith("_") and name not in ("open", "close", "ping")
]


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every `Store` method called from now on for a request (by any instance, on any thread but the
    process's background rounds, which read and prune on their own schedule), with its arguments."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    rounds = {JobResumer.name, RequestResumer.name, Housekeeping.name, Retuner.name}

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def recorded(self: Store, *args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name not in rounds:
                calls.append((name, args))
            return original(self, *args, **kwargs)

        return recorded

    for name in STORE_METHODS:
        monkeypatch.setattr(Store, name, spy(name, getattr(Store, name)))
    yield calls


# -- single-workspace mode -------------------------------------------------------------------------


def test_requests_from_another_workspace_are_refused_before_anything_is_read(
    bot_server: BotServer, store_calls: list[tuple[str, tuple[Any, ...]]]
) -> None:
    assert bot_server.deps is not None
    bot_server.deps.store.add_examples(bot_server.team, "default", [ExampleInput("billing", BILLING[0])])
    store_calls.clear()

    commands = [("/ask", "What is 2+2?"), ("/label", "list"), ("/classify", BILLING[1]), ("/label", "sets")]
    replies = [bot_server.send_command(command, typed, team_id=OTHER) for command, typed in commands]
    mention = {"type": "app_mention", "user": USER, "text": "<@U0GEMBOT> hi", "channel": CHANNEL,
               "ts": "1700000000.000100", "event_ts": "1700000000.000100"}  # fmt: skip
    event = bot_server.send_event(mention, team_id=OTHER)
    shortcut_url = bot_server.slack.response_url()
    shortcut = bot_server.send_shortcut(
        "add_label_example",
        message={"ts": "1700000000.000100", "text": "hi", "user": USER},
        team_id=OTHER,
        response_url=shortcut_url,
    )
    shortcut.sent["response_url"] = shortcut_url
    assert [r.status for r in [*replies, event, shortcut]] == [200] * 6
    bot_server.settle()

    for reply in [*replies, shortcut]:
        (refusal,) = bot_server.slack.wait_for_response(reply.sent["response_url"])
        assert refusal["text"] == ANOTHER_WORKSPACE
    # Nothing but the refusals: no Web API call with this workspace's token, no Gemini, no data.
    assert {c.method for c in bot_server.slack.calls()} == {"response_url"}
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []
    assert store_calls == []

    # The bot's own workspace is served as before, and the spy does see it.
    reply = bot_server.send_command("/label", "list")
    (answer,) = bot_server.slack.wait_for_response(reply.sent["response_url"])
    assert BILLING[0] in texts_of(answer)
    assert ("list_examples", (bot_server.team, "default")) in [(n, a[:2]) for n, a in store_calls]


# A response_url that does not answer (nothing listens on the discard port).
DEAD_URL = "http://127.0.0.1:9/actions/dead"


@pytest.mark.parametrize("mode", ["one workspace", "oauth"])
def test_a_refusal_whose_response_url_fails_is_still_a_200(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.workspaces")
    server = make_bot_server(env=oauth_env(slack_standin) if mode == "oauth" else None)
    if mode == "oauth":
        install(server, ALPHA)
    action = server.send_action("classification_correct", value="1", team_id=OTHER, response_url=DEAD_URL)
    command = server.send_command("/ask", "hi", team_id=OTHER, response_url=DEAD_URL)
    assert (action.status, command.status) == (200, 200), (action.body, command.body)
    assert f"could not tell workspace {OTHER} it is refused" in caplog.text
    assert server.get("/healthz")[0] == 200


def test_uninstall_events_are_acknowledged_and_reported(
    bot_server: BotServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.workspaces")
    uninstalled = {"type": "app_uninstalled", "event_ts": "1700000000.000200"}
    assert bot_server.send_event(uninstalled, team_id=OTHER).status == 200
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0GEMBOT"]}}
    assert bot_server.send_event(revoked, team_id=bot_server.team).status == 200
    bot_server.settle()
    assert "ignored Gembot was uninstalled from workspace T0OTHER" in caplog.text
    assert f"the bot token was revoked in workspace {bot_server.team}: SLACK_BOT_TOKEN no longer works" in (
        caplog.text
    )


def test_one_workspace_serves_its_team_and_enterprise_only() -> None:
    plain = OneWorkspace(token="xoxb-1", identity={"team_id": "T1", "user_id": "U0BOT", "bot_id": "B1"})
    assert plain.serves(team_id="T1", enterprise_id=None)
    assert not plain.serves(team_id="T2", enterprise_id=None)
    assert not plain.serves(team_id=None, enterprise_id=None)
    grid = OneWorkspace(token="xoxb-1", identity={"team_id": "T1", "enterprise_id": "E1"})
    assert grid.serves(team_id="T1", enterprise_id="E1") and grid.serves(team_id="T1", enterprise_id=None)
    assert not grid.serves(team_id="T1", enterprise_id="E2")

    result = plain(context=BoltContext(), enterprise_id=None, team_id="T1", user_id="U9")
    assert result is not None
    assert (result.bot_token, result.bot_user_id, result.bot_id, result.user_id) == (
        "xoxb-1",
        "U0BOT",
        "B1",
        "U9",
    )
    assert plain(context=BoltContext(), enterprise_id=None, team_id="T2", user_id="U9") is None


# -- the workspace key ---------------------------------------------------------------------------


def test_the_workspace_key_includes_the_enterprise_where_there_is_one() -> None:
    assert workspace_key("T1") == "T1"
    assert workspace_key("T1", "E1") == "E1:T1"
    assert workspace_key(None) == ""
    assert workspace_of(BoltContext(team_id="T1")) == "T1"
    assert workspace_of(BoltContext(team_id="T1", enterprise_id="E1")) == "E1:T1"
    assert workspace_of({"team_id": "T1", "enterprise_id": None}) == "T1"


# -- several workspaces (OAuth) ------------------------------------------------------------------


def label(server: BotServer, team: str, typed: str) -> str:
    reply = server.send_command("/label", typed, team_id=team, channel_id=CHANNEL, user_id=USER)
    assert reply.status == 200 and reply.body == "", reply.body
    (answer,) = server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    return texts_of(answer)


def classify(server: BotServer, team: str, typed: str) -> tuple[str, str | None]:
    """The answer `/classify typed` got in `team`, and the token it was posted with."""
    updates = len(server.slack.calls("chat.update"))
    reply = server.send_command("/classify", typed, team_id=team, channel_id=CHANNEL, user_id=USER)
    assert reply.status == 200 and reply.body == "", reply.body
    update = server.slack.wait_for("chat.update", count=updates + 1)[-1]
    server.settle()
    return texts_of(update.params), update.token


def test_workspaces_sharing_channel_and_user_ids_see_only_their_own_labels(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env=oauth_env(slack_standin))
    alpha, beta = install(server, ALPHA), install(server, BETA)
    for text in BILLING[:2]:
        label(server, ALPHA, f"add billing: {text}")
    for text in SHIPPING[:2]:
        label(server, ALPHA, f"add shipping: {text}")
    label(server, BETA, "add weather: it is raining again today")
    label(server, BETA, "add weather: sunny and warm this afternoon")
    label(server, BETA, "add food: pizza for dinner tonight")
    label(server, BETA, "add food: pasta with tomato sauce")

    alpha_list, beta_list = label(server, ALPHA, "list"), label(server, BETA, "list")
    assert BILLING[0] in alpha_list and "pizza" not in alpha_list
    assert "pizza" in beta_list and BILLING[0] not in beta_list and "billing" not in beta_list

    answer, token = classify(server, BETA, "I was charged twice on my invoice")
    assert token == beta.token
    assert "weather" in answer or "food" in answer
    assert "billing" not in answer and "shipping" not in answer
    answer, token = classify(server, ALPHA, "I was charged twice on my invoice")
    assert token == alpha.token
    assert "billing" in answer and "weather" not in answer and "food" not in answer

    assert server.deps is not None
    store = server.deps.store
    assert {r.label for r in store.list_examples(ALPHA, "default")} == {"billing", "shipping"}
    assert {r.label for r in store.list_examples(BETA, "default")} == {"weather", "food"}
    assert [c.set_name for c in store.recent_classifications(ALPHA)] == ["default"]
    assert [c.set_name for c in store.recent_classifications(BETA)] == ["default"]
    # Every message each workspace got was sent with its own token.
    for installed, team in ((alpha, ALPHA), (beta, BETA)):
        sent = [
            c for c in slack_standin.calls() if c.token == installed.token and c.method.startswith("chat.")
        ]
        assert sent, team


def test_a_thread_with_the_same_ids_in_two_workspaces_is_two_conversations(
    make_bot_server: MakeBotServer, slack_standin: SlackStandIn
) -> None:
    server = make_bot_server(env=oauth_env(slack_standin))
    install(server, ALPHA)
    install(server, BETA)
    thread = "1700000000.000100"
    for team, words in ((ALPHA, "my name is Ann"), (BETA, "what is my name?")):
        mention = {"type": "app_mention", "user": USER, "text": f"<@U0GEMBOT> {words}", "channel": CHANNEL,
                   "ts": thread, "event_ts": thread}  # fmt: skip
        assert server.send_event(mention, team_id=team).status == 200
        server.settle()
    assert server.gemini is not None
    first, second = server.gemini.requests("generate")
    assert "Ann" in str(first.json["contents"])
    assert "Ann" not in str(second.json["contents"])  # Beta's thread does not know Alpha's
