"""Daily Gemini limits and GEMBOT_ALLOWED_CHANNELS, through the running HTTP app."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from bot.limits import NOT_ENABLED
from core.daily_limits import UsageCount
from tests.support.label_support import seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

_ts = itertools.count(1)


def ask(server: BotServer, question: str, **fields: Any) -> str:
    """Send `/ask`; return what the user was told privately ("" when Gemini answered in the channel)."""
    updates = len(server.slack.calls("chat.update"))
    reply = server.send_command("/ask", question, **fields)
    assert reply.status == 200 and reply.elapsed < 3.0
    if reply.body:
        server.settle()
        assert reply.json()["response_type"] == "ephemeral"
        return str(reply.json()["text"])
    server.settle()
    private = server.slack.response_posts(reply.sent["response_url"])
    if private:
        (said,) = private
        assert said["response_type"] == "ephemeral"
        return str(said["text"])
    assert len(server.slack.calls("chat.update")) == updates + 1
    return ""


def today() -> Any:
    return datetime.now(UTC).date()


def usage(server: BotServer, user: str) -> UsageCount:
    assert server.deps is not None
    return server.deps.store.usage(server.team, user, today())


# -- limits ---------------------------------------------------------------------------------------


def test_over_the_user_limit_the_user_is_told_and_gemini_is_not_called(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env={"GEMBOT_USER_DAILY_LIMIT": "2"})
    assert server.gemini is not None
    assert ask(server, "first question") == ""
    assert ask(server, "second question") == ""
    said = ask(server, "third question")
    assert said == ":warning: You have used your 2 Gemini calls for today; the limit resets at midnight UTC."
    assert [r.json["contents"][-1]["parts"][-1]["text"] for r in server.gemini.requests("generate")] == [
        "first question",
        "second question",
    ]
    assert len(server.slack.calls("chat.postMessage")) == 2  # nothing was posted for the third
    assert usage(server, "U0HUMAN") == UsageCount(user=2, team=0)
    # Another person has calls of their own.
    assert ask(server, "my first question", user_id="U0OTHER") == ""
    assert len(server.gemini.requests("generate")) == 3


def test_the_workspace_limit_is_shared_by_its_users(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_USER_DAILY_LIMIT": "5", "GEMBOT_TEAM_DAILY_LIMIT": "3"})
    assert server.gemini is not None
    assert ask(server, "one", user_id="U0ANA") == ""
    assert ask(server, "two", user_id="U0ANA") == ""
    assert ask(server, "three", user_id="U0BO") == ""
    expected = (
        ":warning: This workspace has used its 3 Gemini calls for today; the limit resets at midnight UTC."
    )
    assert ask(server, "four", user_id="U0BO") == expected
    assert ask(server, "five", user_id="U0ANA") == expected
    assert len(server.gemini.requests("generate")) == 3
    assert usage(server, "U0ANA") == UsageCount(user=2, team=3)
    assert usage(server, "U0BO") == UsageCount(user=1, team=3)


def test_the_limits_hold_across_worker_processes(make_bot_server: MakeBotServer, database_url: str) -> None:
    # Two servers on one database, as two workers behind a load balancer (PostgreSQL too).
    env = {"GEMBOT_USER_DAILY_LIMIT": "3"}
    first = make_bot_server(database_url=database_url, env=env)
    second = make_bot_server(database_url=database_url, env=env)
    assert first.gemini is not None
    said = [ask(server, f"question {n}") for n, server in enumerate([first, second, first, second, second])]
    assert said[:3] == ["", "", ""]
    assert (
        said[3]
        == said[4]
        == ":warning: You have used your 3 Gemini calls for today; the limit resets at midnight UTC."
    )
    assert len(first.gemini.requests("generate")) == 3


def test_over_the_limit_a_mention_is_told_privately_in_its_thread(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_USER_DAILY_LIMIT": "1"})
    assert server.gemini is not None

    def mention(question: str) -> dict[str, Any]:
        ts = f"1700002{next(_ts):03d}.000100"
        return {
            "type": "app_mention",
            "user": "U0HUMAN",
            "text": f"<@{server.slack.bot_user_id}> {question}",
            "ts": ts,
            "event_ts": ts,
            "channel": "C0GENERAL",
        }

    server.send_event(mention("what is a haiku?"))
    server.slack.wait_for("chat.stopStream")  # the first answer, streamed
    server.settle()
    second = mention("and a sonnet?")
    server.send_event(second)
    (note,) = server.slack.wait_for("chat.postEphemeral")
    server.settle()
    assert (note.params["user"], note.params["thread_ts"]) == ("U0HUMAN", second["ts"])
    assert note.params["text"] == (
        ":warning: You have used your 1 Gemini call for today; the limit resets at midnight UTC."
    )
    assert len(server.slack.calls("chat.postMessage")) == 1  # no "Thinking…" for the second
    assert len(server.gemini.requests("generate")) == 1


def test_embeddings_served_from_the_cache_do_not_count(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(
        embedder="real", env={"GEMBOT_EMBEDDER": "gemini", "GEMBOT_USER_DAILY_LIMIT": "2"}
    )
    assert server.gemini is not None
    seed(server)

    def classify(text: str) -> str:
        updates = len(server.slack.calls("chat.update"))
        reply = server.send_command("/classify", text)
        assert reply.status == 200 and reply.body == "", reply.body
        (*_, update) = server.slack.wait_for("chat.update", count=updates + 1)
        server.settle()
        return texts_of(update.params)

    # The first time, the set's examples and the text miss the cache: two embedding requests.
    assert ": *billing* (" in classify("a second charge on my invoice")
    assert len(server.gemini.requests("embed")) == 2
    assert usage(server, "U0HUMAN") == UsageCount(user=2, team=0)
    # The same text again comes from the cache: answered although the limit is reached.
    assert ": *billing* (" in classify("a second charge on my invoice")
    assert len(server.gemini.requests("embed")) == 2
    assert usage(server, "U0HUMAN") == UsageCount(user=2, team=0)
    # A new text would need Gemini: refused, in place of the working message.
    said = classify("where is the parcel I ordered")
    assert "You have used your 2 Gemini calls for today" in said
    assert len(server.gemini.requests("embed")) == 2


def test_no_limit_configured_counts_nothing(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server()
    assert ask(server, "a question") == ""
    assert usage(server, "U0HUMAN") == UsageCount(user=0, team=0)


# -- allowed channels -------------------------------------------------------------------------------


def test_commands_outside_the_allowed_channels_are_refused_privately(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_ALLOWED_CHANNELS": "C0ALLOWED, C0OTHER"})
    assert server.gemini is not None
    reply = server.send_command("/ask", "anyone there?", channel_id="C0GENERAL")
    assert reply.status == 200 and reply.json() == {"response_type": "ephemeral", "text": NOT_ENABLED}
    reply = server.send_command("/label", "add billing: charged twice", channel_id="C0GENERAL")
    assert reply.json()["text"] == NOT_ENABLED
    server.settle()
    assert server.slack.calls() == [] and server.gemini.requests() == []
    assert server.deps is not None and server.deps.store.list_sets(server.team) == []

    assert ask(server, "anyone there?", channel_id="C0ALLOWED") == ""
    # A direct message with the bot is always allowed.
    assert ask(server, "and here?", channel_id="D0HUMAN") == ""
    assert len(server.gemini.requests("generate")) == 2


def test_a_dm_between_two_people_is_a_channel_like_any_other(make_bot_server: MakeBotServer) -> None:
    """A slash command typed in a DM between two people carries that DM's `D…` id: outside the
    allowlist it is refused, while the person's own DM with the bot (as `conversations.open`
    names it) is always allowed, and asked about once per person."""
    server = make_bot_server(env={"GEMBOT_ALLOWED_CHANNELS": "C0ALLOWED"})
    assert server.gemini is not None
    reply = server.send_command("/ask", "between us?", channel_id="D0TWOPEOPLE", channel_name="directmessage")
    assert reply.status == 200 and reply.json() == {"response_type": "ephemeral", "text": NOT_ENABLED}
    reply = server.send_command("/label", "add billing: charged twice", channel_id="D0TWOPEOPLE")
    assert reply.json()["text"] == NOT_ENABLED
    server.settle()
    assert server.gemini.requests() == [] and server.slack.calls("chat.postMessage") == []
    assert server.deps is not None and server.deps.store.list_sets(server.team) == []
    (opened,) = server.slack.calls("conversations.open")  # remembered after the first time
    assert opened.params["users"] == "U0HUMAN"

    assert ask(server, "and here?", channel_id=opened.response["channel"]["id"]) == ""
    assert len(server.gemini.requests("generate")) == 1
    assert len(server.slack.calls("conversations.open")) == 1
    # Another person's DM with the bot is not this person's.
    reply = server.send_command("/ask", "mine?", channel_id="D0SOMEONEELSE", user_id="U0HUMAN")
    assert reply.json()["text"] == NOT_ENABLED


def test_a_message_in_the_dm_with_the_bot_is_always_allowed(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_ALLOWED_CHANNELS": "C0ALLOWED"})
    assert server.gemini is not None
    ts = "1700003100.000100"
    event = {
        "type": "message",
        "channel_type": "im",
        "user": "U0HUMAN",
        "text": "hello in my DM",
        "ts": ts,
        "event_ts": ts,
        "channel": "D0HUMAN",
    }
    assert server.send_event(event).status == 200
    server.slack.wait_for("chat.stopStream")
    assert len(server.gemini.requests("generate")) == 1
    assert server.slack.calls("conversations.open") == []  # Slack sends message.im only from its DMs


def test_a_mention_outside_the_allowed_channels_is_told_privately(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_ALLOWED_CHANNELS": "C0ALLOWED"})
    assert server.gemini is not None
    ts = "1700003000.000100"
    event = {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": f"<@{server.slack.bot_user_id}> hello?",
        "ts": ts,
        "event_ts": ts,
        "channel": "C0GENERAL",
    }
    assert server.send_event(event).status == 200
    (note,) = server.slack.wait_for("chat.postEphemeral")
    server.settle()
    assert (note.params["channel"], note.params["user"], note.params["text"]) == (
        "C0GENERAL",
        "U0HUMAN",
        NOT_ENABLED,
    )
    assert server.slack.calls("chat.postMessage") == [] and server.gemini.requests() == []


def test_buttons_outside_the_allowed_channels_are_refused(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_ALLOWED_CHANNELS": "C0ALLOWED"})
    seed(server)
    url = server.slack.response_url()
    reply = server.send_action(
        "classify_correct",
        value="billing",
        block_id="classify_feedback:1",
        channel_id="C0GENERAL",
        message={"ts": "1700000000.000100", "text": "billing", "blocks": []},
        response_url=url,
    )
    assert reply.status == 200
    (said,) = server.slack.wait_for_response(url)
    server.settle()
    assert said == {"text": NOT_ENABLED, "response_type": "ephemeral"}
    assert server.deps is not None
    assert server.deps.store.label_history(server.team)[0].actor is None  # only the seed's import
