"""Slack failing on the reply path: rate limits, server errors, a channel the bot is not in, an upload
URL that fails. Each ends with the answer delivered, or a sentence the user can act on, and the bot
still healthy.

Through the running HTTP app, with faults injected by the Slack stand-in (`fail_next`); the real
slack_sdk clients retry them with the handlers `bot.app.web_client` (Web API) and
`handlers.replies.retry_handlers` (`response_url`) give them.
"""

from __future__ import annotations

import pytest

from tests.support.label_support import seed, texts_of
from tests.support.slack_fixtures import BotServer

CHANNEL = "C0GENERAL"


def ask(server: BotServer, question: str = "Are you there?", **fields: str) -> None:
    reply = server.send_command("/ask", question, **fields)
    assert reply.status == 200 and reply.elapsed < 3.0, reply


def healthy(server: BotServer) -> None:
    assert server.get("/healthz") == (200, {"ok": True})


# -- rate limits and server errors on chat.postMessage / chat.update ------------------------------


def the_answer(server: BotServer) -> dict[str, object]:
    """The one answer in the channel: /ask's question message, and the answer in its thread."""
    question, answer = server.slack.messages(CHANNEL)
    assert answer["thread_ts"] == question["ts"]
    return answer


@pytest.mark.parametrize("method", ["chat.startStream", "chat.update"])
def test_a_429_is_retried_after_its_retry_after_and_the_answer_arrives_once(
    bot_server: BotServer, method: str
) -> None:
    slack = bot_server.slack
    slack.fail_next(method, status=429, retry_after=1)
    ask(bot_server)
    refused, retried = slack.wait_for(method, count=2)
    bot_server.settle()
    assert (refused.status, retried.status) == (429, 200)
    assert retried.time - refused.time >= 0.95  # slack_sdk waited for Retry-After
    assert the_answer(bot_server)["text"] == "echo: Are you there?"
    assert len(slack.calls(method)) == 2
    healthy(bot_server)


@pytest.mark.parametrize(
    ("method", "status"), [("chat.postMessage", 503), ("chat.startStream", 500), ("chat.update", 500)]
)
def test_a_server_error_is_retried_and_the_answer_arrives_once(
    bot_server: BotServer, method: str, status: int
) -> None:
    slack = bot_server.slack
    slack.fail_next(method, status=status)
    ask(bot_server)
    failed, retried = slack.wait_for(method, count=2)
    bot_server.settle()
    assert (failed.status, retried.status) == (status, 200)
    assert the_answer(bot_server)["text"] == "echo: Are you there?"
    healthy(bot_server)


def test_slack_failing_past_the_retries_ends_in_a_sentence_not_a_loop(bot_server: BotServer) -> None:
    slack = bot_server.slack
    slack.fail_next("chat.startStream", error="not_allowed")  # so the answer goes by chat.update
    slack.fail_next("chat.update", status=500, n=3)  # the first try and both retries
    ask(bot_server)
    bot_server.settle(timeout=20)
    updates = slack.calls("chat.update")
    # Three tries of the answer, then one of the sentence that replaces the working message.
    assert [c.status for c in updates] == [500, 500, 500, 200]
    (shown,) = slack.messages(CHANNEL)
    assert shown["text"] == (
        ":warning: Slack is having trouble right now (it answered 500); try again in a minute."
    )
    ask(bot_server, "And now?")
    slack.wait_for("chat.update", count=5)
    bot_server.settle()
    assert slack.messages(CHANNEL)[-1]["text"] == "echo: And now?"
    healthy(bot_server)


def test_rate_limited_past_the_retries_says_so(bot_server: BotServer) -> None:
    slack = bot_server.slack
    slack.fail_next("chat.startStream", error="not_allowed")  # so the answer goes by chat.update
    slack.fail_next("chat.update", status=429, retry_after=0, n=3)
    ask(bot_server)
    bot_server.settle(timeout=20)
    (shown,) = slack.messages(CHANNEL)
    assert shown["text"] == ":warning: Slack is rate-limiting me right now; try again in a minute."


# -- the response_url ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [{"status": 429, "retry_after": 1}, {"status": 503}])
def test_the_response_url_is_retried_too(bot_server: BotServer, fault: dict[str, int]) -> None:
    # In a private channel the bot is not in, the working message and the answer both go through
    # the command's response_url.
    seed(bot_server)
    slack = bot_server.slack
    slack.add_channel("G0PRIVATE", member=False, private=True)
    slack.fail_next("response_url", **fault)
    reply = bot_server.send_command("/classify", "charged twice on my invoice", channel_id="G0PRIVATE")
    assert reply.status == 200
    working, answer = slack.wait_for_response(reply.sent["response_url"], count=2)
    bot_server.settle()
    assert "Classifying" in working["text"]
    assert answer["replace_original"] is True and ": billing (" in answer["text"]
    assert [c.status for c in slack.calls("response_url")] == [fault["status"], 200, 200]


def test_a_private_note_whose_response_url_fails_goes_by_chat_post_ephemeral(bot_server: BotServer) -> None:
    slack = bot_server.slack
    slack.fail_next("response_url", status=429, retry_after=0, n=3)  # past the retries
    reply = bot_server.send_command("/label", "list")
    assert reply.status == 200
    (note,) = slack.wait_for("chat.postEphemeral")
    bot_server.settle()
    assert note.params["user"] == "U0HUMAN" and "No label set" in note.params["text"]


# -- uploads -------------------------------------------------------------------------------------


def test_not_in_channel_on_upload_makes_the_bot_join_and_upload_again(bot_server: BotServer) -> None:
    seed(bot_server)
    slack = bot_server.slack
    # Removed from the channel between answering and attaching the confusion matrix.
    slack.fail_next("files.completeUploadExternal", error="not_in_channel")
    reply = bot_server.send_command("/label", "eval", channel_id="C0PUBLIC")
    assert reply.status == 200
    slack.wait_for("files.completeUploadExternal", count=2)
    bot_server.settle()
    first, second = slack.calls("files.completeUploadExternal")
    assert first.response["error"] == "not_in_channel" and second.ok
    (join,) = slack.calls("conversations.join")
    assert join.params["channel"] == "C0PUBLIC"
    (uploaded,) = slack.uploads()
    assert uploaded.filename == "default-confusion.png" and uploaded.channels == ["C0PUBLIC"]


def test_not_in_a_private_channel_on_upload_the_user_is_told_how_to_invite_the_bot(
    bot_server: BotServer,
) -> None:
    seed(bot_server)
    slack = bot_server.slack
    slack.add_channel("G0PRIVATE", private=True)
    slack.fail_next("files.completeUploadExternal", error="not_in_channel")
    reply = bot_server.send_command("/label", "eval", channel_id="G0PRIVATE")
    (note,) = slack.wait_for_response(reply.sent["response_url"])
    bot_server.settle()
    assert note["response_type"] == "ephemeral"
    assert note["text"] == (
        "I couldn't attach default-confusion.png here. I'm not in this channel: invite me with "
        "`/invite @Gembot` and try again."
    )
    assert slack.uploads() == []
    healthy(bot_server)


def test_an_upload_url_that_fails_once_is_tried_again(bot_server: BotServer) -> None:
    seed(bot_server)
    slack = bot_server.slack
    slack.fail_next("upload", status=500)
    bot_server.send_command("/label", "export")
    slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    assert [c.status for c in slack.calls("upload")] == [500, 200]
    (uploaded,) = slack.uploads()
    assert uploaded.filename == "default.csv" and uploaded.text.startswith("text,label")


def test_an_upload_url_that_keeps_failing_is_told_to_the_user(bot_server: BotServer) -> None:
    seed(bot_server)
    slack = bot_server.slack
    slack.fail_next("upload", status=500, n=2)
    reply = bot_server.send_command("/label", "export")
    (note,) = slack.wait_for_response(reply.sent["response_url"])
    bot_server.settle()
    assert note["text"] == (
        ":warning: I couldn't attach default.csv: Slack's file upload failed twice. Try again in a minute."
    )
    assert slack.uploads() == [] and slack.calls("files.completeUploadExternal") == []
    # The answer a surface shows before its image (here /similar's pairs) stays as it is.
    slack.fail_next("upload", status=500, n=2)
    bot_server.send_command("/similar", "the printer is jammed\nthe printer jammed again\nlunch menu")
    slack.wait_for("chat.update")
    bot_server.settle()
    (answer,) = slack.messages(CHANNEL)
    assert "Most similar pairs" in texts_of(answer)
    healthy(bot_server)
