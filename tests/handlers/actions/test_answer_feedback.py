"""The feedback buttons under Gemini's answers, through the app and the Slack and Gemini stand-ins:
the block on a `/ask` answer and on a mention's, what a press stores, and the presses refused."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock
from sqlalchemy import select

from core.errors import DatabaseUnavailable
from core.store import Store
from core.store.schema import AnswerFeedbackRow, AnswerRow
from handlers.actions import answer_feedback
from tests.support.slack_fixtures import BotServer

CHANNEL = "C0GENERAL"
BOT = "U0GEMBOT"


def feedback_elements(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The `feedback_buttons` elements of a message's `context_actions` blocks."""
    return [
        element
        for block in params.get("blocks") or []
        if block["type"] == "context_actions"
        for element in block["elements"]
        if element["type"] == "feedback_buttons"
    ]


def store_of(server: BotServer) -> Store:
    assert server.deps is not None
    return server.deps.store


def answer_rows(server: BotServer) -> list[tuple[int, str, str, str | None, str]]:
    with store_of(server).engine.connect() as conn:
        rows = conn.execute(
            select(
                AnswerRow.id, AnswerRow.team_id, AnswerRow.channel_id, AnswerRow.message_ts, AnswerRow.model
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def verdicts(server: BotServer) -> list[tuple[int, str, bool]]:
    with store_of(server).engine.connect() as conn:
        rows = conn.execute(
            select(AnswerFeedbackRow.answer_id, AnswerFeedbackRow.user_id, AnswerFeedbackRow.good)
        ).all()
    return [(int(a), str(u), bool(g)) for a, u, g in rows]


def press(server: BotServer, value: str, *, user_id: str = "U0HUMAN") -> str:
    """Press a feedback button whose value is `value`; the one line the presser is shown."""
    url = server.slack.response_url()
    reply = server.send_action(
        answer_feedback.ACTION_ID,
        value=value,
        action_type="feedback_buttons",
        block_id="answer_feedback:x",
        user_id=user_id,
        response_url=url,
    )
    assert reply.status == 200 and reply.elapsed < 3.0
    (said,) = server.slack.wait_for_response(url)
    assert said["response_type"] == "ephemeral"
    return str(said["text"])


def test_the_block_is_slacks_context_actions_with_feedback_buttons() -> None:
    block = answer_feedback.feedback_block(42)
    assert block == {
        "type": "context_actions",
        "block_id": "answer_feedback:42",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": "answer_feedback",
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Good", "emoji": True},
                    "accessibility_label": "Mark this answer as good",
                    "value": "good:42",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Not good", "emoji": True},
                    "accessibility_label": "Mark this answer as not good",
                    "value": "bad:42",
                },
            }
        ],
    }
    # slack_sdk reads it back as its own model: the shape is the one it knows.
    parsed = SdkBlock.parse(block)
    assert parsed is not None and parsed.to_dict() == block


def test_an_ask_answer_carries_feedback_buttons_naming_its_recorded_answer(bot_server: BotServer) -> None:
    bot_server.send_command("/ask", "What is the capital of Australia?")
    (streamed,) = bot_server.slack.wait_for_streams(timeout=15)
    (stop,) = bot_server.slack.calls("chat.stopStream")
    assert stop.params["blocks"][-1]["type"] == "context_actions"  # last, under the answer
    (buttons,) = feedback_elements(stop.params)
    ((answer_id, team, channel, ts, model),) = answer_rows(bot_server)
    # The answer recorded is the streamed message in the question's thread.
    assert (team, channel, ts) == (bot_server.team, CHANNEL, streamed["ts"])
    assert model == bot_server.settings.generation_model
    assert buttons["positive_button"]["value"] == f"good:{answer_id}"
    assert buttons["negative_button"]["value"] == f"bad:{answer_id}"
    # The message the channel shows has them too.
    assert feedback_elements(streamed)


def test_a_mention_answer_carries_feedback_buttons(bot_server: BotServer) -> None:
    ts = "1700009999.000100"
    event = {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": f"<@{BOT}> hello",
        "ts": ts,
        "channel": CHANNEL,
    }
    bot_server.send_event({**event, "event_ts": ts})
    (streamed,) = bot_server.slack.wait_for_streams(timeout=15)
    assert streamed["thread_ts"] == ts
    (buttons,) = feedback_elements(streamed)
    ((answer_id, _, channel, answer_ts, model),) = answer_rows(bot_server)
    assert (channel, answer_ts) == (CHANNEL, streamed["ts"])
    assert model == bot_server.settings.generation_model
    assert buttons["positive_button"]["value"] == f"good:{answer_id}"


def test_good_then_bad_by_the_same_person_keeps_one_verdict_the_latest(bot_server: BotServer) -> None:
    answer = store_of(bot_server).record_answer(bot_server.team, CHANNEL, message_ts="1.2", model="m")
    assert "Thanks" in press(bot_server, f"good:{answer}")
    assert verdicts(bot_server) == [(answer, "U0HUMAN", True)]
    assert "Thanks" in press(bot_server, f"bad:{answer}")
    assert verdicts(bot_server) == [(answer, "U0HUMAN", False)]
    press(bot_server, f"good:{answer}", user_id="U0OTHER")
    assert sorted(verdicts(bot_server)) == [(answer, "U0HUMAN", False), (answer, "U0OTHER", True)]


def test_another_workspaces_answer_is_refused_and_nothing_stored(bot_server: BotServer) -> None:
    theirs = store_of(bot_server).record_answer("T0ELSEWHERE", "C1", message_ts=None, model="m")
    said = press(bot_server, f"good:{theirs}")
    assert "no longer on record" in said
    assert verdicts(bot_server) == []


def test_unknown_or_malformed_values_get_one_line(bot_server: BotServer) -> None:
    assert "no longer on record" in press(bot_server, "good:999999")
    for value in ("", "great:1", "good:", "good:1; DROP TABLE answers", "good:" + "9" * 40):
        said = press(bot_server, value)
        assert said == ":warning: That button no longer works.", value
    assert verdicts(bot_server) == []


def test_an_answer_that_cannot_be_recorded_is_shown_without_buttons(
    bot_server: BotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*args: object, **kwargs: object) -> int:
        raise DatabaseUnavailable("cannot use the database just now")

    monkeypatch.setattr(store_of(bot_server), "record_answer", away)
    bot_server.send_command("/ask", "What is the capital of Australia?")
    (streamed,) = bot_server.slack.wait_for_streams(timeout=15)
    assert "echo: What is the capital of Australia?" in streamed["text"]
    assert feedback_elements(streamed) == []
