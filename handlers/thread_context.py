"""Mid-thread summons: what was said in a Slack thread before the bot was called into it.

A mention inside a thread the bot has no conversation in (someone else started it, and the bot
has not answered there) is asked about that thread — "@Gembot summarise this thread". Its earlier
messages are read from Slack (`conversations.replies`: `channels:history` in public channels,
`groups:history` in private ones) and go to Gemini as plain text ahead of the question.

What is read is bounded: at most MAX_PAGES pages of replies, of which the newest MAX_MESSAGES
messages before the mention, and of those the newest that fit in MAX_CHARS characters; a line says
how many earlier ones were left out. Each message goes through `handlers.text.plain`, so Gemini
reads what people read, and bots' messages are marked as a bot's. DMs are left alone (a DM thread
is the bot's own), and a thread Slack will not hand over (a group DM: no `mpim:history`) is
answered without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

from core.gemini.generation import Turn
from handlers import matchers, text
from handlers.request import SlackRequest

MAX_MESSAGES = 50
MAX_CHARS = 12_000
PAGE = 200
MAX_PAGES = 5
INTRO = "Earlier messages in this Slack thread, oldest first (for context):"
LEFT_OUT = "({n} earlier messages left out)"


def earlier_messages(request: SlackRequest) -> list[Turn]:
    """The thread's messages before the request's message, as one user turn of plain text; empty
    when the message is not a reply in a channel thread, or Slack refuses to say."""
    thread, mention = request.thread_ts, request.message_ts
    if not thread or not mention or thread == mention or matchers.is_direct_message(request.channel):
        return []
    try:
        messages = list(_replies(request, thread, mention))
    except SlackApiError as exc:
        request.logger.info(
            "could not read thread %s in %s: %s", thread, request.channel, exc.response.get("error")
        )
        return []
    lines = bounded(
        [m for m in messages if _before(m, mention)], max_messages=MAX_MESSAGES, max_chars=MAX_CHARS
    )
    return [Turn("user", "\n".join([INTRO, *lines]))] if lines else []


def _replies(request: SlackRequest, thread: str, mention: str) -> Iterable[Mapping[str, Any]]:
    cursor = None
    for _ in range(MAX_PAGES):
        page = request.client.conversations_replies(
            channel=request.channel, ts=thread, latest=mention, inclusive=False, limit=PAGE, cursor=cursor
        )
        yield from page.get("messages") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not page.get("has_more") or not cursor:
            return


def _before(message: Mapping[str, Any], mention: str) -> bool:
    return _ts_key(str(message.get("ts") or "")) < _ts_key(mention)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return (int(seconds or 0), int(micros or 0)) if (seconds + micros).isdigit() else (0, 0)


def bounded(messages: list[Mapping[str, Any]], *, max_messages: int, max_chars: int) -> list[str]:
    """One line per message (`who: text`), the newest `max_messages` that fit in `max_chars`
    characters in all, oldest first, after a line saying how many earlier ones were left out.
    A newest message longer than the whole bound is cut, so there is always something to read."""
    said = [
        (who, words)
        for m in messages
        if (who := speaker(m)) and (words := text.plain(str(m.get("text") or "")))
    ]
    lines: list[str] = []
    used = 0
    for who, words in reversed(said[-max_messages:] if max_messages > 0 else []):
        line = f"{who}: {words}"
        if used + len(line) > max_chars:
            if not lines:
                lines.append(line[: max(0, max_chars - 1)] + "…")
            break
        lines.append(line)
        used += len(line) + 1
    lines.reverse()
    left_out = len(said) - len(lines)
    return [LEFT_OUT.format(n=left_out), *lines] if left_out and lines else lines


def speaker(message: Mapping[str, Any]) -> str | None:
    """Who said `message`: `@USERID` for a person, `NAME (a bot)` for a bot; None for what is
    not something said (joins, edits, deletions)."""
    if message.get("bot_id") or message.get("subtype") == "bot_message":
        profile = message.get("bot_profile") or {}
        name = profile.get("name") or message.get("username") or message.get("bot_id") or "a bot"
        return f"{name} (a bot)"
    if not matchers.is_a_person_saying(message.get("subtype")) or not message.get("user"):
        return None
    return f"@{message['user']}"
