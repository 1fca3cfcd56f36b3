"""Mid-thread summons: a mention in a thread the bot did not start reads the thread first.

Asserted on what reached Gemini (the earlier messages, as plain text, bots marked, within the
bounds) and on what was asked of Slack (`conversations.replies`, a bounded number of pages).
"""

from __future__ import annotations

import itertools
from typing import Any

from handlers import thread_context
from tests.support.gemini import GeminiStandIn
from tests.support.slack_fixtures import BotServer

BOT = "U0GEMBOT"
CHANNEL = "C0SUMMONS"
_clock = itertools.count(1)


def next_ts() -> str:
    return f"1720000{next(_clock):03d}.000300"


def mention(text: str, **extra: Any) -> dict[str, Any]:
    ts = next_ts()
    return {
        "type": "app_mention",
        "user": "U0ASKER",
        "text": text,
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
        **extra,
    }


def first_text(gemini: GeminiStandIn | None, n: int = 0) -> str:
    assert gemini is not None
    contents = gemini.requests("generate")[n].json["contents"]
    return " ".join(p.get("text", "") for p in contents[0]["parts"])


def test_a_mention_in_someone_elses_thread_reads_it_first(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    slack.add_message(
        CHANNEL, "Deploy *failed* again, see <https://ci.example/42|build 42>", user="U0ANA", ts=root
    )
    slack.add_message(
        CHANNEL, "I think it's the &lt;cache&gt;, <@U0BEN|ben>?", user="U0CAT", ts=next_ts(), thread_ts=root
    )
    slack.add_message(
        CHANNEL,
        "Build 42 failed: exit code 1",
        user="U0CIBOT",
        ts=next_ts(),
        thread_ts=root,
        bot_id="B0CI",
        bot_profile={"name": "CI"},
    )
    slack.add_message(CHANNEL, "joined", user="U0DAN", ts=next_ts(), thread_ts=root, subtype="channel_join")
    event = mention(f"<@{BOT}> summarise this thread", thread_ts=root)
    slack.add_message(CHANNEL, event["text"], user="U0ASKER", ts=event["ts"], thread_ts=root)
    slack.add_message(CHANNEL, "a later reply", user="U0ANA", ts=next_ts(), thread_ts=root)

    bot_server.send_event(event)
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    sent = first_text(bot_server.gemini)
    assert sent == "\n".join(
        [
            thread_context.INTRO,
            "@U0ANA: Deploy *failed* again, see build 42",
            "@U0CAT: I think it's the <cache>, @ben?",
            "CI (a bot): Build 42 failed: exit code 1",
            "",
            "summarise this thread",
        ]
    )
    (replies,) = slack.calls("conversations.replies")
    assert replies.params["ts"] == root and replies.params["latest"] == event["ts"]
    assert (slack.messages(CHANNEL)[-1]["thread_ts"], len(bot_server.gemini.requests("generate"))) == (
        root,
        1,
    )  # type: ignore[union-attr]


def test_a_long_thread_is_read_within_the_bounds(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    slack.add_message(CHANNEL, "the start", user="U0ANA", ts=root)
    for n in range(1, 700):
        slack.add_message(
            CHANNEL, f"message {n:03d} " + "x" * 300, user="U0CAT", ts=next_ts(), thread_ts=root
        )
    bot_server.send_event(mention(f"<@{BOT}> what was decided?", thread_ts=root))
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    sent = first_text(bot_server.gemini)
    assert len(sent) <= thread_context.MAX_CHARS + 500
    assert "message 699" in sent and "the start" not in sent and "message 600" not in sent
    assert "earlier messages left out)" in sent
    assert len(slack.calls("conversations.replies")) <= thread_context.MAX_PAGES


def test_a_follow_up_in_the_bots_own_thread_does_not_read_slack(bot_server: BotServer) -> None:
    first = mention(f"<@{BOT}> one")
    bot_server.send_event(first)
    bot_server.slack.wait_for("chat.stopStream")
    bot_server.send_event(mention(f"<@{BOT}> two", thread_ts=first["ts"]))
    bot_server.slack.wait_for("chat.stopStream", count=2)
    bot_server.settle()
    assert not bot_server.slack.calls("conversations.replies")


def test_a_thread_slack_will_not_hand_over_is_answered_without_it(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    slack.fail_next("conversations.replies", error="missing_scope")
    bot_server.send_event(mention(f"<@{BOT}> summarise this thread", thread_ts=root))
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    assert first_text(bot_server.gemini) == "summarise this thread"


def test_the_bound_keeps_the_newest_and_cuts_one_overlong_message() -> None:
    messages = [{"user": "U1", "text": f"m{n}", "ts": f"1.{n}"} for n in range(10)]
    assert thread_context.bounded(messages, max_messages=3, max_chars=1000) == [
        "(7 earlier messages left out)",
        "@U1: m7",
        "@U1: m8",
        "@U1: m9",
    ]
    (line,) = thread_context.bounded([{"user": "U1", "text": "y" * 50}], max_messages=5, max_chars=20)
    assert len(line) == 20 and line.endswith("…")
