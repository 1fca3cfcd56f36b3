"""A channel's recent messages as plain texts, read with `conversations.history` and the bot token.

Only what people wrote counts: messages from bots (Gembot's own answers included), joins, leaves,
topic changes and other system messages are skipped, as are messages with no text (a file alone).
Slack's markup is undone (`handlers.text.plain`) so that what is compared is what people
read. A public channel the bot is not in is joined once; a channel it cannot read (private, or a
conversation between other people) raises `CannotReadHistory` with a sentence saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.errors import GembotError
from handlers import text
from handlers.matchers import is_a_person_saying, is_direct_message
from handlers.replies import slack_error_code

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # the most Slack recommends per conversations.history page
MAX_PAGES = 5

INVITE = "I can't read this channel's messages: invite me with `/invite @Gembot`, then try again."
NOT_HERE = (
    "I can't read the messages of this conversation: `/cluster last N` works in channels I'm in. "
    "Here, paste the texts one per line instead."
)
NO_SCOPE = (
    "I lack the Slack permission to read this channel's messages (channels:history or "
    "groups:history): whoever runs me needs to reinstall the app from its manifest."
)


class CannotReadHistory(GembotError):
    """The bot may not read the channel's messages; the message says what to do about it."""


def written_by_a_person(message: Mapping[str, Any]) -> bool:
    """True for a message a person wrote; False for bots, apps and channel events."""
    if message.get("bot_id") or message.get("bot_profile") or message.get("app_id"):
        return False
    if not is_a_person_saying(message.get("subtype")):
        return False
    return bool(message.get("user"))


def recent_texts(client: WebClient, channel: str, count: int) -> list[str]:
    """The texts of the last `count` messages people wrote in `channel`, oldest first.

    Reads pages until it has `count` of them or the channel's beginning (at most `MAX_PAGES`
    pages, so that a channel full of bot chatter cannot keep it reading).
    """
    texts: list[str] = []
    cursor: str | None = None
    joined = False
    for _ in range(MAX_PAGES):
        response, joined = _page(client, channel, cursor=cursor, limit=PAGE_SIZE, joined=joined)
        for message in response.get("messages") or []:
            if len(texts) >= count:
                break
            if written_by_a_person(message):
                body = text.plain(str(message.get("text") or ""))
                if body:
                    texts.append(body)
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if len(texts) >= count or not cursor or not response.get("has_more"):
            break
    texts.reverse()  # Slack answers newest first
    return texts


def _page(
    client: WebClient, channel: str, *, cursor: str | None, limit: int, joined: bool
) -> tuple[Any, bool]:
    try:
        return client.conversations_history(channel=channel, cursor=cursor, limit=limit), joined
    except SlackApiError as exc:
        code = slack_error_code(exc)
        if code == "not_in_channel" and not joined:
            _join(client, channel)
            return _page(client, channel, cursor=cursor, limit=limit, joined=True)
        if code in ("not_in_channel", "channel_not_found"):
            raise CannotReadHistory(NOT_HERE if is_direct_message(channel) else INVITE) from None
        if code in ("missing_scope", "not_allowed_token_type"):
            raise CannotReadHistory(NO_SCOPE) from None
        raise


def _join(client: WebClient, channel: str) -> None:
    try:
        client.conversations_join(channel=channel)
    except SlackApiError as exc:
        # Private channels and conversations between people cannot be joined, only invited to.
        log.info("could not join %s to read it: %s", channel, slack_error_code(exc))
        raise CannotReadHistory(NOT_HERE if is_direct_message(channel) else INVITE) from None
