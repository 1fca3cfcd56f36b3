"""Grounding in Slack: with GEMBOT_GROUNDING=search, `/ask` and mentions offer Gemini the Google
Search tool and list the sources under the answer, each with its address visible; off (the
default), nothing changes; other Gemini calls never ground."""

from __future__ import annotations

import json
from typing import Any

from core.gemini.grounding import Source
from handlers.source_links import HEADING, sources_footer
from tests.handlers.commands.test_classify import classify
from tests.support.gemini.generate_api import DEFAULT_SOURCES
from tests.support.label_support import seed
from tests.support.slack_fixtures import BotServer, MakeBotServer

SEARCH = {"GEMBOT_GROUNDING": "search"}


def footer_texts(params: dict[str, Any]) -> list[list[str]]:
    """The texts of each context block a chat.stopStream put under the answer."""
    return [
        [element.get("text", "") for element in block.get("elements") or []]
        for block in params.get("blocks") or []
        if block["type"] == "context"
    ]


def mention(text: str) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": text,
        "ts": "1720000001.000100",
        "channel": "C0GENERAL",
        "event_ts": "1720000001.000100",
    }


def test_off_by_default_no_tool_and_no_sources(bot_server: BotServer) -> None:
    bot_server.send_command("/ask", "What is new in Python 3.14?")
    (stop,) = bot_server.slack.wait_for("chat.stopStream", timeout=15)
    bot_server.settle()
    assert bot_server.gemini is not None
    (sent,) = bot_server.gemini.requests("generate")
    assert "tools" not in sent.json
    assert not any(texts and texts[0] == HEADING for texts in footer_texts(stop.params))


def test_ask_with_search_lists_the_sources_under_the_answer(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=SEARCH)
    server.send_command("/ask", "What is new in Python 3.14?")
    (streamed,) = server.slack.wait_for_streams(timeout=15)
    server.settle()
    assert streamed["text"] == "echo: What is new in Python 3.14?"
    assert server.gemini is not None
    (sent,) = server.gemini.requests("generate")
    assert sent.json["tools"] == [{"googleSearch": {}}]
    (stop,) = server.slack.calls("chat.stopStream")
    (sources,) = [texts for texts in footer_texts(stop.params) if texts[0] == HEADING]
    assert sources[1:] == [f"{title} ({uri})" if title != uri else uri for uri, title in DEFAULT_SOURCES]
    assert stop.params["blocks"][-1]["type"] == "context_actions"  # the feedback buttons stay last


def test_a_mention_with_search_drops_hostile_urls(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=SEARCH)
    assert server.gemini is not None
    server.gemini.ground_with(
        [
            ("javascript:alert(1)", "Click me"),
            ("https://" + "a" * 600 + ".example/", "Too long"),
            ("https://good.example/a?b=1&c=<2>", "<!channel> news"),
        ]
    )
    server.send_event(mention("<@U0GEMBOT> what happened today?"))
    (stop,) = server.slack.wait_for("chat.stopStream", timeout=15)
    server.settle()
    (sent,) = server.gemini.requests("generate")
    assert sent.json["tools"] == [{"googleSearch": {}}]
    (sources,) = [texts for texts in footer_texts(stop.params) if texts[0] == HEADING]
    assert sources[1:] == ["&lt;!channel&gt; news (https://good.example/a?b=1&amp;c=&lt;2&gt;)"]
    shown = " ".join(" ".join(texts) for texts in footer_texts(stop.params))
    assert "javascript:" not in shown and "Too long" not in shown


def test_cluster_titles_never_ground_even_with_search(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=SEARCH)
    assert server.gemini is not None
    server.gemini.reply('{"titles": ["Backups", "Lunch"]}')
    texts = ["backup failed", "backup failed again", "backups are slow", "lunch on friday", "friday lunch"]
    server.send_command("/cluster", "k=2\n" + "\n".join(texts))
    server.slack.wait_for("chat.update", timeout=15)
    server.settle()
    (sent,) = server.gemini.requests("generate")
    assert "tools" not in sent.json


def test_the_footer_shows_each_address_and_nothing_without_sources() -> None:
    assert sources_footer([]) == []
    (block,) = sources_footer(
        [Source(title="", url="https://a.example/x"), Source(title="B", url="https://b.example/")]
    )
    assert [e["text"] for e in block["elements"]] == [
        HEADING,
        "https://a.example/x",
        "B (https://b.example/)",
    ]


def test_escalation_never_grounds_even_with_search(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={**SEARCH, "GEMBOT_MIN_SIMILARITY": "2"})
    seed(server)
    assert server.gemini is not None
    server.gemini.reply(json.dumps({"label": "shipping"}))
    assert classify(server, "my parcel and my invoice")["text"] == "shipping (chosen by Gemini)"
    (sent,) = server.gemini.requests("generate")
    assert "tools" not in sent.json
