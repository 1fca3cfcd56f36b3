"""Slack's agent experience (the app's messages surface), through the app and both stand-ins.

What is asserted is what reached Slack: the greeting and the exact suggested prompts of a new
assistant thread, the answer and the title of a question asked there, the context kept when it
changes; and that a DM, in a thread or not, gets exactly one answer whichever listener takes it.
"""

from __future__ import annotations

import itertools
from typing import Any

from handlers.events import assistant
from tests.support.gemini import GeminiStandIn, RecordedRequest
from tests.support.slack_fixtures import BotServer

DM = "D0HUMAN"
_clock = itertools.count(1)


def next_ts() -> str:
    return f"1710000{next(_clock):03d}.000200"


def thread_started(thread_ts: str, *, context_channel: str = "C0GENERAL") -> dict[str, Any]:
    """An `assistant_thread_started` event as Slack sends it."""
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": "U0HUMAN",
            "context": {"channel_id": context_channel, "team_id": "T0TEAM", "enterprise_id": None},
            "channel_id": DM,
            "thread_ts": thread_ts,
        },
        "event_ts": next_ts(),
    }


def context_changed(thread_ts: str, *, context_channel: str) -> dict[str, Any]:
    event = thread_started(thread_ts, context_channel=context_channel)
    event["type"] = "assistant_thread_context_changed"
    return event


def direct(text: str, **extra: Any) -> dict[str, Any]:
    ts = next_ts()
    return {
        "type": "message",
        "user": "U0HUMAN",
        "text": text,
        "ts": ts,
        "channel": DM,
        "channel_type": "im",
        "event_ts": ts,
        **extra,
    }


def generations(gemini: GeminiStandIn | None) -> list[RecordedRequest]:
    assert gemini is not None
    return gemini.requests("generate")


def test_a_new_assistant_thread_is_greeted_with_the_suggested_prompts(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    assert bot_server.send_event(thread_started(root)).status == 200
    (prompts,) = slack.wait_for("assistant.threads.setSuggestedPrompts")
    bot_server.settle()
    # (slack_sdk adds the request's team_id to every JSON call Bolt's client makes)
    assert {k: v for k, v in prompts.params.items() if k != "team_id"} == {
        "channel_id": DM,
        "thread_ts": root,
        "title": "Try one of these:",
        "prompts": [
            {"title": "Ask about an image", "message": "How do I ask you about an image?"},
            {"title": "Classify a message", "message": "How do I classify a message?"},
            {
                "title": "Cluster this channel's last 50 messages",
                "message": "How do I cluster this channel's last 50 messages?",
            },
        ],
    }
    (greeting,) = slack.calls("chat.postMessage")
    assert greeting.params["text"] == assistant.GREETING and greeting.params["thread_ts"] == root
    # Bolt's `say` keeps the thread's context in the greeting, where its context store finds it.
    assert greeting.params["metadata"]["event_payload"]["channel_id"] == "C0GENERAL"
    assert generations(bot_server.gemini) == []


def test_a_changed_context_is_kept_in_the_greetings_metadata(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    bot_server.send_event(thread_started(root))
    slack.wait_for("assistant.threads.setSuggestedPrompts")
    bot_server.settle()
    bot_server.send_event(context_changed(root, context_channel="C0RANDOM"))
    (update,) = slack.wait_for("chat.update")
    (greeting,) = slack.messages(DM)
    assert update.params["ts"] == greeting["ts"]
    assert update.params["metadata"]["event_payload"]["channel_id"] == "C0RANDOM"


def test_a_question_in_an_assistant_thread_is_answered_once_and_titles_it(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    bot_server.send_event(thread_started(root))
    slack.wait_for("assistant.threads.setSuggestedPrompts")
    bot_server.settle()
    question = "What is a haiku, and who wrote the best ones?\nAnswer briefly, please."
    bot_server.send_event(direct(question, thread_ts=root))
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    (generation,) = generations(bot_server.gemini)
    assert generation.json["contents"][-1]["parts"][0]["text"] == question
    answers = [m for m in slack.messages(DM) if m["text"] != assistant.GREETING]
    assert len(answers) == 1 and answers[0]["thread_ts"] == root
    assert "echo: What is a haiku" in answers[0]["text"]
    assert slack.thread_titles() == {(DM, root): "What is a haiku, and who wrote the best ones?"}

    # The follow-up carries the thread on and keeps the title.
    bot_server.send_event(direct("And in French?", thread_ts=root))
    slack.wait_for("chat.stopStream", count=2)
    bot_server.settle()
    assert len(generations(bot_server.gemini)) == 2
    assert len(slack.calls("assistant.threads.setTitle")) == 1


def test_a_long_first_question_gets_a_short_title() -> None:
    title = assistant.title_of("word " * 40)
    assert len(title) <= assistant.MAX_TITLE and title.endswith("…")
    assert assistant.title_of("  Short   one \n second line") == "Short one"


def test_a_suggested_prompt_is_answered_by_gembot_not_gemini(bot_server: BotServer) -> None:
    slack, root = bot_server.slack, next_ts()
    bot_server.send_event(direct(assistant.PROMPTS[2]["message"], thread_ts=root))
    (post,) = slack.wait_for("chat.postMessage")
    bot_server.settle()
    assert "`/cluster last 50`" in post.params["text"] and post.params["thread_ts"] == root
    assert generations(bot_server.gemini) == []
    assert not slack.calls("assistant.threads.setTitle")


def test_a_plain_dm_is_answered_exactly_once(bot_server: BotServer) -> None:
    slack = bot_server.slack
    event = direct("What is a limerick?")
    bot_server.send_event(event)
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    assert len(generations(bot_server.gemini)) == 1
    (answer,) = slack.messages(DM)
    assert answer["thread_ts"] == event["ts"] and "echo: What is a limerick?" in answer["text"]
    assert len(slack.calls("chat.postMessage")) == 1
    assert not slack.calls("assistant.threads.setTitle")
    assert not slack.calls("assistant.threads.setSuggestedPrompts")


def test_a_reply_in_a_dm_thread_is_answered_once_and_gets_no_title(bot_server: BotServer) -> None:
    """A workspace that has not moved to the agent surface: Bolt's Assistant middleware takes the
    reply (it has a thread_ts), and it is answered as before, with the thread's conversation."""
    slack = bot_server.slack
    first = direct("Name a colour")
    bot_server.send_event(first)
    slack.wait_for("chat.stopStream")
    bot_server.send_event(direct("And another one?", thread_ts=first["ts"]))
    slack.wait_for("chat.stopStream", count=2)
    bot_server.settle()
    follow_up = generations(bot_server.gemini)
    assert len(follow_up) == 2
    assert [c["role"] for c in follow_up[1].json["contents"]] == ["user", "model", "user"]
    assert len(slack.calls("chat.postMessage")) == 2
    assert not slack.calls("assistant.threads.setTitle")
