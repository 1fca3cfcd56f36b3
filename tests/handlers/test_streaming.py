"""Answers streamed into Slack (`handlers.streaming`), and every fallback triggered on purpose
through the Slack stand-in: a stream refused, a stream that broke half-way, a stop refused, a
thread status refused; plus the buffering that bounds Slack calls and the neutralising of pieces.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers import streaming, text
from tests.handlers.events.test_image_questions import BOT, CHANNEL, DM, direct, mention
from tests.support.slack_fixtures import BotServer

# Two halves, each longer than the buffer: the first opens the stream, the second is appended.
LONG = " ".join(f"word{i}" for i in range(700))


def markdown_of(message: dict[str, Any]) -> str:
    """The text a message shows in its markdown blocks (an answer sent by chat.update)."""
    return "".join(b["text"] for b in message.get("blocks") or [] if b.get("type") == "markdown")


def answers(server: BotServer, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in server.slack.messages(channel) if m.get("user") == BOT]


@pytest.mark.parametrize("error", ["not_allowed", "channel_not_found", "invalid_arguments"])
def test_a_refused_stream_answers_in_place_of_the_working_message(bot_server: BotServer, error: str) -> None:
    slack = bot_server.slack
    slack.fail_next("chat.startStream", error=error)
    event = mention(f"<@{BOT}> tell me <!here>")
    bot_server.send_event(event)
    (working,) = slack.wait_for("chat.postMessage")
    bot_server.settle()
    (message,) = answers(bot_server)  # one message: the working one, now the answer
    assert message["ts"] == working.response["ts"] and message["thread_ts"] == event["ts"]
    assert markdown_of(message) == "echo: tell me &lt;!here&gt;"
    assert message["text"] == "echo: tell me &lt;!here&gt;"
    assert not slack.calls("chat.stopStream") and not slack.calls("chat.delete")


def test_a_stream_that_breaks_half_way_carries_on_in_its_message(bot_server: BotServer) -> None:
    slack = bot_server.slack
    assert bot_server.gemini is not None
    bot_server.gemini.reply(LONG)
    slack.fail_next("chat.appendStream", error="message_not_in_streaming_state")
    bot_server.send_event(mention(f"<@{BOT}> count"))
    slack.wait_for("chat.appendStream")
    bot_server.settle()
    (start,) = slack.calls("chat.startStream")
    (message,) = answers(bot_server)  # the stream's own message, brought up to date
    assert message["ts"] == start.response["ts"]
    assert markdown_of(message) == LONG  # nothing lost, nothing twice
    assert not slack.calls("chat.stopStream")


def test_a_refused_stop_still_shows_the_whole_answer(bot_server: BotServer) -> None:
    slack = bot_server.slack
    slack.fail_next("chat.stopStream", error="message_not_in_streaming_state")
    bot_server.send_event(mention(f"<@{BOT}> the end"))
    slack.wait_for("chat.stopStream")
    bot_server.settle()
    (message,) = answers(bot_server)
    assert markdown_of(message) == "echo: the end"
    (update,) = slack.calls("chat.update")
    assert update.params["ts"] == message["ts"]


def test_pieces_are_buffered_so_slack_sees_few_calls(bot_server: BotServer) -> None:
    slack = bot_server.slack
    assert bot_server.gemini is not None
    bot_server.gemini.reply(LONG)
    bot_server.send_event(mention(f"<@{BOT}> count"))
    (streamed,) = slack.wait_for_streams()
    assert streamed["text"] == LONG
    calls = [c.method for c in slack.calls() if "Stream" in c.method]
    assert calls == ["chat.startStream", "chat.appendStream", "chat.stopStream"]


def test_a_dm_shows_the_thread_status_while_gemini_thinks(bot_server: BotServer) -> None:
    slack = bot_server.slack
    event = direct("what is a haiku?")
    bot_server.send_event(event)
    (status,) = slack.wait_for("assistant.threads.setStatus")
    assert status.params["channel_id"] == DM and status.params["thread_ts"] == event["ts"]
    assert status.params["loading_messages"] == streaming.LOADING_MESSAGES
    (streamed,) = slack.wait_for_streams()
    assert streamed["text"] == "echo: what is a haiku?"
    assert status.time < slack.last("chat.startStream").time


def test_a_refused_thread_status_is_ignored(bot_server: BotServer) -> None:
    bot_server.slack.fail_next("assistant.threads.setStatus", error="not_allowed")
    bot_server.send_event(direct("still there?"))
    (streamed,) = bot_server.slack.wait_for_streams()
    assert streamed["text"] == "echo: still there?"


def test_no_thread_status_in_a_channel(bot_server: BotServer) -> None:
    bot_server.send_event(mention(f"<@{BOT}> hi"))
    bot_server.slack.wait_for_streams()
    assert not bot_server.slack.calls("assistant.threads.setStatus")


def test_an_answer_stopped_for_safety_is_taken_back(bot_server: BotServer) -> None:
    slack = bot_server.slack
    assert bot_server.gemini is not None
    bot_server.gemini.finish("SAFETY", text="Here is how to")
    bot_server.send_event(mention(f"<@{BOT}> something dubious"))
    bot_server.settle()
    shown = " ".join(m["text"] for m in slack.messages(CHANNEL))
    assert "Here is how to" not in shown
    assert "judged unsafe" in " ".join(c.params.get("text", "") for c in slack.calls("chat.postEphemeral"))


# -- the pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "Tell @here and <!channel> about [the invoice](https://evil.example/x?a=1&b=2) now.",
        "A [label with spaces](https://example.com/a) then @everyone, then [not a link] at all.",
        "Ask <@U123> or @channelled folks: `x < y` & [https://a.example](https://a.example)",
    ],
)
def test_a_streamed_rendering_is_the_whole_renderings_prefix_at_every_cut(answer: str) -> None:
    whole = text.safe_markdown(answer)
    for cut in range(len(answer) + 1):
        partial = answer[:cut]
        shown = text.safe_markdown(partial[: text.stable_end(partial)])
        assert whole.startswith(shown), (cut, shown)


def test_safe_markdown_defuses_pings_and_shows_where_links_go() -> None:
    shown = text.safe_markdown("Hi <!channel>, @here: see [your invoice](https://evil.example/pay).")
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "@here" not in shown and "@\u200bhere" in shown
    assert "your invoice (https://evil.example/pay)" in shown
    assert text.safe_markdown("[https://a.example](https://a.example)") == "https://a.example"
    hidden = text.safe_markdown("[x](javascript:alert(1)) [y](slack://open)")
    assert "](" not in hidden and "y (slack://open)" in hidden


def test_holding_back_links_stays_fast_on_hostile_text() -> None:
    hostile = ["[x](" + "(aaaa" * 5_000 + " ", "[" * 20_000, "[a]" * 7_000 + "[b](c"]
    started = time.perf_counter()
    for answer in hostile:
        for cut in range(0, len(answer), 500):
            text.stable_end(answer[:cut])
    assert time.perf_counter() - started < 1.0


def test_an_answer_stopped_for_safety_after_a_refused_stream_is_told_in_its_place(
    bot_server: BotServer,
) -> None:
    slack = bot_server.slack
    assert bot_server.gemini is not None
    bot_server.gemini.finish("SAFETY", text="Here is how to")
    slack.fail_next("chat.startStream", error="not_allowed")
    bot_server.send_event(mention(f"<@{BOT}> something dubious"))
    (working,) = slack.wait_for("chat.postMessage")
    bot_server.settle()
    (message,) = answers(bot_server)
    assert message["ts"] == working.response["ts"]
    assert "judged unsafe" in message["text"] and "Here is how to" not in str(message)
