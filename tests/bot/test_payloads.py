"""Requests no Slack would send, and texts longer than the bot takes: each gets a 4xx, or a 200 with a
clear private answer, never a 500 (which Slack would answer by sending the event again), no listener
runs on them, and the bot stays healthy.

Through the running HTTP app (`bot.wsgi` with `bot.slack_http`); the malformed ones are signed with
the right secret unless said otherwise, so they pass for Slack's in every way but the one tested.
"""

from __future__ import annotations

import json
import math
import time
from urllib.parse import urlencode

import pytest

from tests.support.label_support import seed
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_harness import command_body

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
LONG = 40_000  # what a Slack message may hold
REFUSED = (
    "characters long, and I take at most 4,000: shorten it (whoever runs me can raise GEMBOT_MAX_TEXT_CHARS)."
)


def nothing_ran(server: BotServer) -> None:
    """No listener did anything: nothing reached Slack or Gemini, and the bot answers its health check."""
    server.settle()
    assert server.slack.calls() == []
    assert server.gemini is not None and server.gemini.requests() == []
    assert server.get("/healthz") == (200, {"ok": True})


def command_without(name: str) -> str:
    fields = dict(item.split("=", 1) for item in command_body("/ask", "hello").split("&"))
    del fields[name]
    return "&".join(f"{k}={v}" for k, v in fields.items())


# -- bodies Bolt cannot read -----------------------------------------------------------------------

MALFORMED = {
    "form not UTF-8": (b"command=%2Fask&text=caf\xe9", FORM),
    "JSON not UTF-8": (b'{"type": "event_callback", "event": {"text": "caf\xe9"}}', JSON),
    "truncated JSON": (b'{"type": "event_callback", "event": {"type": "message", "te', JSON),
    "JSON array": (b"[1, 2, 3]", JSON),
    "JSON string": (b'"event_callback"', JSON),
    "JSON null": (b"null", JSON),
    "JSON nested too deep": (b"[" * 100_000, JSON),
    "event is a string": (b'{"type": "event_callback", "event_id": "Ev1", "event": "hello"}', JSON),
    "authorizations is a string": (b'{"type": "event_callback", "authorizations": "x"}', JSON),
    "actions empty": (urlencode({"payload": '{"type": "block_actions", "actions": []}'}).encode(), FORM),
    "view a string": (urlencode({"payload": '{"type": "view_submission", "view": "V1"}'}).encode(), FORM),
    "payload truncated": (urlencode({"payload": '{"type": "block_actions", "act'}).encode(), FORM),
    "payload an array": (urlencode({"payload": "[1]"}).encode(), FORM),
    "command without user": (command_without("user_id").encode(), FORM),
    "command without channel": (command_without("channel_id").encode(), FORM),
    "command without response_url": (command_without("response_url").encode(), FORM),
    "command without team": (command_without("team_id").encode(), FORM),
}


def test_a_body_no_slack_would_send_is_400_signed_and_401_unsigned(bot_server: BotServer) -> None:
    # Unsigned, it is refused for that before anything reads what it holds.
    refusals = {
        True: (400, {"ok": False, "error": "bad_request"}),
        False: (401, {"ok": False, "error": "invalid_request"}),
    }
    wrong = {}
    for case, (body, content_type) in MALFORMED.items():
        for signed in (True, False):
            reply = bot_server.sender.post(body, content_type=content_type, signed=signed)
            if (reply.status, reply.json()) != refusals[signed]:
                wrong[case, signed] = (reply.status, reply.body)
    assert wrong == {}
    nothing_ran(bot_server)


# -- missing what routes them: 4xx (no listener for it) -------------------------------------------

UNROUTABLE = {
    "event without event": {"type": "event_callback", "event_id": "Ev0NOEVENT", "team_id": "T0STANDIN"},
    "event without type": {
        "type": "event_callback",
        "event_id": "Ev0NOTYPE",
        "team_id": "T0STANDIN",
        "event": {"text": "hi"},
    },
    "no type at all": {"team_id": "T0STANDIN", "text": "what am I?"},
}
UNROUTABLE_INTERACTIONS = {
    "block_actions without actions": {"type": "block_actions", "team": {"id": "T0STANDIN"}},
    "view_submission without view": {"type": "view_submission", "team": {"id": "T0STANDIN"}},
    "message_action without callback_id": {"type": "message_action", "team": {"id": "T0STANDIN"}},
}


def test_a_payload_missing_what_routes_it_is_4xx_and_runs_nothing(bot_server: BotServer) -> None:
    statuses = {
        case: bot_server.sender.post(json.dumps(p), content_type=JSON).status
        for case, p in UNROUTABLE.items()
    }
    statuses |= {case: bot_server.sender.interactive(p).status for case, p in UNROUTABLE_INTERACTIONS.items()}
    assert {case: status for case, status in statuses.items() if not 400 <= status < 500} == {}
    nothing_ran(bot_server)


# -- timestamps --------------------------------------------------------------------------------------


def test_a_timestamp_outside_five_minutes_or_not_a_number_is_401(bot_server: BotServer) -> None:
    now = time.time()
    command = command_body("/ask", "What time is it?")
    event = {"type": "message", "channel": "D0HUMAN", "channel_type": "im", "user": "U0HUMAN", "text": "hi"}
    for stamp in (int(now) - 301, math.ceil(now) + 301):
        assert bot_server.sender.post(command, content_type=FORM, timestamp=stamp).status == 401, stamp
        assert bot_server.send_event(event, options={"timestamp": stamp}).status == 401, stamp
    words = {"headers": {"X-Slack-Request-Timestamp": "soon"}}
    assert bot_server.sender.post(command, content_type=FORM, **words).status == 401
    assert bot_server.send_event(event, options=words).status == 401
    nothing_ran(bot_server)


# -- texts longer than the bot takes ----------------------------------------------------------------


LONG_TEXTS = [
    ("/classify", "x" * LONG, f"Your text is 40,000 {REFUSED}"),
    ("/classify", "set:default " + "x" * LONG, f"Your text is 40,000 {REFUSED}"),
    ("/ask", "why " * (LONG // 4), f"Your question is 39,999 {REFUSED}"),
    ("/label", "add billing: " + "x" * LONG, f"The example is 40,000 {REFUSED}"),
    ("/similar", "short\n" + "x" * LONG, f"Line 2 is 40,000 {REFUSED}"),
    ("/cluster", "a\nb\n" + "x" * LONG, f"Line 3 is 40,000 {REFUSED}"),
]


def test_a_40000_character_text_is_refused_in_the_ack(bot_server: BotServer) -> None:
    seed(bot_server)
    for command, text, refusal in LONG_TEXTS:
        reply = bot_server.send_command(command, text)
        assert reply.status == 200 and reply.elapsed < 3.0, command
        assert reply.json() == {"text": refusal, "response_type": "ephemeral"}, command
    nothing_ran(bot_server)


def test_slack_escapes_count_as_the_characters_they_stand_for(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_TEXT_CHARS": "100"})
    seed(server)
    # 100 "&" arrive as 500 characters of "&amp;": what is classified is 100 characters.
    reply = server.send_command("/classify", "&amp;" * 100)
    assert reply.status == 200 and reply.body == ""
    server.slack.wait_for("chat.update")
    server.settle()
    reply = server.send_command("/classify", "&amp;" * 101)
    assert reply.json()["text"].startswith("Your text is 101 characters long, and I take at most 100")


@pytest.mark.parametrize("where", ["dm", "mention"])
def test_a_40000_character_message_to_the_bot_gets_a_sentence_and_no_gemini_call(
    bot_server: BotServer, where: str
) -> None:
    channel, extra = ("D0HUMAN", {"channel_type": "im"}) if where == "dm" else ("C0GENERAL", {})
    event = {
        "type": "message" if where == "dm" else "app_mention",
        "channel": channel,
        "user": "U0HUMAN",
        "text": ("<@U0GEMBOT> " if where == "mention" else "") + "y" * LONG,
        "ts": "1700004000.000100",
        "event_ts": "1700004000.000100",
        **extra,
    }
    reply = bot_server.send_event(event)
    assert reply.status == 200 and reply.elapsed < 3.0
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    bot_server.settle()
    assert post.params["text"] == f"Your message is 40,000 {REFUSED}"
    assert post.params["thread_ts"] == "1700004000.000100"
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []
    assert bot_server.get("/healthz") == (200, {"ok": True})


def test_the_bound_is_a_setting(make_bot_server: MakeBotServer) -> None:
    from core.errors import InvalidInput
    from core.settings import Settings

    assert Settings().max_text_chars == 4_000
    server = make_bot_server(env={"GEMBOT_MAX_TEXT_CHARS": "10000"})
    reply = server.send_command("/ask", "z" * 9_000)
    assert reply.status == 200 and reply.body == ""
    server.slack.wait_for("chat.update")
    server.settle()
    with pytest.raises(InvalidInput, match="GEMBOT_MAX_TEXT_CHARS must be at least 100"):
        Settings.from_env({"GEMBOT_MAX_TEXT_CHARS": "5"})
