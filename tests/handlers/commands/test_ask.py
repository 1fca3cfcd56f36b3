"""`/ask` through the running HTTP app, with the Slack and Gemini stand-ins behind it."""

from __future__ import annotations

import re
from typing import Any

from tests.support.slack_fixtures import BotServer, MakeBotServer

LIVE_SEQUENCE = re.compile(r"<[!@#]")


def texts_of(params: dict[str, Any]) -> list[str]:
    """Every piece of text a chat.postMessage / chat.update / response_url post carries."""
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:  # a markdown block's text is a string, a section's an object
            shown = block["text"]
            found.append(shown if isinstance(shown, str) else shown["text"])
        for element in block.get("elements") or []:
            found.append(element.get("text", ""))
    return found


def sections_of(params: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in params.get("blocks") or [] if b["type"] == "section"]


def test_ask_acks_at_once_then_streams_the_answer_under_the_question(bot_server: BotServer) -> None:
    gemini = bot_server.gemini
    assert gemini is not None
    gemini.latency(4.0, on="generate")
    reply = bot_server.send_command("/ask", "What is the capital of Australia?")
    assert reply.status == 200
    assert reply.elapsed < 3.0, f"the ack took {reply.elapsed:.2f} s"
    assert reply.body == ""  # nothing to say in the ack: the answer comes in the channel

    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert working.params["channel"] == "C0GENERAL"
    assert "Asking Gemini" in " ".join(texts_of(working.params))
    assert "capital of Australia" in " ".join(texts_of(working.params))  # the question is shown
    assert not bot_server.slack.calls("chat.update")  # Gemini is still thinking

    (streamed,) = bot_server.slack.wait_for_streams(timeout=15)
    assert streamed["thread_ts"] == working.response["ts"]  # in the question's thread
    assert streamed["text"] == "echo: What is the capital of Australia?"
    (start,) = bot_server.slack.calls("chat.startStream")
    assert start.time - working.time >= 3.5  # the answer really waited for Gemini
    assert start.params["recipient_user_id"] == "U0HUMAN"
    # The question's message loses its "working" line and points to the answer.
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["ts"] == working.response["ts"]
    assert "Asking Gemini" not in " ".join(texts_of(update.params))
    assert "The answer is in the thread" in " ".join(texts_of(update.params))
    question, message = bot_server.slack.messages("C0GENERAL")
    assert question["ts"] == working.response["ts"]
    assert message["text"] == "echo: What is the capital of Australia?"
    (request,) = gemini.requests("generate")
    assert request.json["contents"][-1]["parts"][-1]["text"] == "What is the capital of Australia?"


def test_model_output_cannot_ping_anyone(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.reply(
        "Hey <!channel> and <!here|here>, ask <@U123> in <#C999|general> or <!subteam^S1|team>. "
        "Also @here and <!everyone>. **Bold** and [a link](https://example.com/?a=1&b=2)."
    )
    bot_server.send_command("/ask", "ping <!channel> please")
    (streamed,) = bot_server.slack.wait_for_streams()
    (update,) = bot_server.slack.wait_for("chat.update")
    (working,) = bot_server.slack.calls("chat.postMessage")
    for params in (working.params, update.params, streamed):
        for piece in texts_of(params):
            # The asker's own mention in "<@U0HUMAN> asked:" is the only live sequence.
            assert not LIVE_SEQUENCE.search(piece.replace("<@U0HUMAN> asked:", "")), piece
            assert "@here" not in piece
    answer = streamed["text"]
    assert "&lt;!channel&gt;" in answer and "&lt;@U123&gt;" in answer and "&lt;#C999|general&gt;" in answer
    # Markdown as written (Slack's markdown block renders it); the link shows where it goes.
    assert "**Bold**" in answer and "a link (https://example.com/?a=1&amp;b=2)" in answer


def test_a_markdown_bomb_in_an_answer_is_answered_at_once_and_whole(bot_server: BotServer) -> None:
    """40,000 characters of `__a ` (seconds of regex backtracking before) from the model: the
    answer starts at once, and carries on whole over as many messages as it needs."""
    assert bot_server.gemini is not None
    bomb = "__a " * 10_000
    bot_server.gemini.reply(bomb)
    bot_server.send_command("/ask", "write a lot")
    (update,) = bot_server.slack.wait_for("chat.update", timeout=15)  # the last step
    (working,) = bot_server.slack.calls("chat.postMessage")
    streamed = bot_server.slack.wait_for_streams(count=4)
    assert update.time - working.time < 2.0  # the quadratic conversion took seconds per answer
    assert all(len(m["text"]) <= 12_000 for m in streamed)
    assert "".join(m["text"] for m in streamed).strip() == bomb.strip()


def test_a_long_answer_streams_whole_in_a_few_calls(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}_{j}" for j in range(60)) for i in range(20)]
    answer = "\n\n".join(paragraphs)
    assert 9_000 < len(answer) < 12_000
    bot_server.gemini.reply(answer)
    bot_server.send_command("/ask", "Tell me everything")
    (streamed,) = bot_server.slack.wait_for_streams()
    assert streamed["text"] == answer  # nothing lost, one message
    (update,) = bot_server.slack.wait_for("chat.update")
    assert len(update.params["text"]) <= 3000  # the notification's text stays short
    calls = [m for m in bot_server.slack.methods() if m.startswith("chat.") and "Stream" in m]
    assert 2 <= len(calls) <= 2 + len(answer) // 800  # buffered, not a call per piece
    assert not bot_server.slack.uploads()


def test_an_answer_too_long_for_a_message_carries_on_in_the_thread(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    answer = "\n\n".join(f"Section {i}. " + "lorem ipsum dolor sit amet " * 40 for i in range(40))
    assert len(answer) > 40_000
    bot_server.gemini.reply(answer)
    bot_server.send_command("/ask", "Write a book")
    (update,) = bot_server.slack.wait_for("chat.update")
    streamed = bot_server.slack.wait_for_streams(count=4)
    assert all(len(m["text"]) <= 12_000 for m in streamed)  # a markdown block's limit
    assert {m["thread_ts"] for m in streamed} == {update.params["ts"]}
    assert "".join(m["text"] for m in streamed).strip() == answer.strip()  # the whole answer, as written
    assert not bot_server.slack.uploads()


def test_without_gemini_the_user_is_told_privately(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(gemini=False)
    reply = server.send_command("/ask", "Hello?")
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    assert "Gemini is not configured" in reply.json()["text"]
    server.settle()
    assert server.slack.calls() == []
    assert server.gemini is not None and server.gemini.requests() == []


def test_an_empty_prompt_gets_the_usage_line(bot_server: BotServer) -> None:
    reply = bot_server.send_command("/ask", "   ")
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    assert reply.json()["text"].startswith("Usage: `/ask")
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_the_daily_quota_is_explained(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.fail_next(status=429, quota="per_day", on="generate")
    bot_server.send_command("/ask", "Anything")
    (update,) = bot_server.slack.wait_for("chat.update")
    shown = " ".join(texts_of(update.params))
    assert "daily Gemini quota is used up" in shown and "midnight Pacific" in shown
    assert len(bot_server.gemini.requests("generate")) == 1  # a daily quota is not retried


def test_a_blocked_prompt_says_why(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.block_prompt("SAFETY")
    bot_server.send_command("/ask", "Something dubious")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert "refused the prompt because it was judged unsafe" in " ".join(texts_of(update.params))


def test_a_public_channel_is_joined_when_the_bot_is_not_in_it(bot_server: BotServer) -> None:
    bot_server.slack.add_channel("C0PUBLIC", member=False)
    bot_server.send_command("/ask", "Hi", channel_id="C0PUBLIC")
    bot_server.slack.wait_for("chat.update")
    assert bot_server.slack.methods() == [
        "chat.postMessage",  # not_in_channel
        "conversations.join",
        "chat.postMessage",
        "chat.startStream",  # the first piece at once
        "chat.stopStream",  # the rest with the stop
        "chat.update",  # the question's message points to the thread
    ]
    assert bot_server.slack.messages("C0PUBLIC")[1]["text"] == "echo: Hi"


def test_where_the_bot_cannot_post_it_answers_through_the_response_url(bot_server: BotServer) -> None:
    bot_server.slack.add_channel("G0PRIVATE", member=False, private=True)
    reply = bot_server.send_command("/ask", "Secret question", channel_id="G0PRIVATE")
    url = reply.sent["response_url"]
    bot_server.slack.wait_for_response(url, count=2)
    bot_server.settle()
    # The answer replaces the working message as it grows: the first post and the last say it all.
    posts = bot_server.slack.response_posts(url)
    working, answer = posts[0], posts[-1]
    assert working["response_type"] == "in_channel" and "Asking Gemini" in working["text"]
    assert answer["replace_original"] is True
    assert answer["text"] == "echo: Secret question"
    assert not bot_server.slack.calls("chat.update")


def test_a_rate_limited_update_is_retried_after_retry_after(bot_server: BotServer) -> None:
    bot_server.slack.fail_next("chat.update", status=429, retry_after=0)
    bot_server.send_command("/ask", "Hi")
    updates = bot_server.slack.wait_for("chat.update", count=2, timeout=10)
    assert [u.status for u in updates] == [429, 200]
    question, answer = bot_server.slack.messages("C0GENERAL")
    assert answer["text"] == "echo: Hi"
    assert question["text"] == "Asked: Hi (the answer is in the thread)"


def test_when_slack_refuses_the_answer_the_user_hears_about_it(bot_server: BotServer) -> None:
    bot_server.slack.fail_next("chat.startStream", error="not_allowed")  # so the answer is an update
    bot_server.slack.fail_next("chat.update", error="msg_too_long")
    reply = bot_server.send_command("/ask", "Hi")
    bot_server.slack.wait_for("chat.update", count=2)  # the answer, then the apology in its place
    bot_server.settle()
    (message,) = bot_server.slack.messages("C0GENERAL")
    assert "too long for a Slack message" in message["text"]
    assert reply.status == 200
