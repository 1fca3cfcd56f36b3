"""Listener matchers shared by the surfaces that read messages.

Bolt already drops events the bot itself caused (its own user id or bot id). These also drop other
bots' messages (a bot answering a bot is how loops start) and the edits and deletions Slack reports
as `message` events. Use them as `app.event("message", matchers=[matchers.from_a_person])`. What
counts as a person's message and as a DM is decided here for every module that asks
(`handlers.channel_history`, `bot.limits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `message` subtypes that are a person saying something (a plain message has none); every other
# subtype (message_changed, message_deleted, bot_message, channel_join, ...) is bookkeeping.
PERSON_SUBTYPES = frozenset({"file_share", "thread_broadcast", "me_message"})


def is_a_person_saying(subtype: Any) -> bool:
    """True for the subtype (None or "" for none) of a message a person said something in."""
    return subtype in (None, "") or subtype in PERSON_SUBTYPES


def is_from_a_person(event: Mapping[str, Any]) -> bool:
    """True for a message (or mention) a person wrote; False for bots, edits, deletions and joins."""
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    if not is_a_person_saying(event.get("subtype")):
        return False
    return bool(event.get("user"))


def from_a_person(event: dict[str, Any]) -> bool:
    """Bolt listener matcher (Bolt passes the `event` argument by name): see `is_from_a_person`."""
    return is_from_a_person(event)


def is_direct_message(channel_id: str) -> bool:
    """Whether `channel_id` is a DM: the bot's own, or one between people (Slack's DM ids start with D)."""
    return channel_id.startswith("D")


def is_im(event: Mapping[str, Any]) -> bool:
    """Whether Slack says the message event came from the app's own DM (`channel_type: im`)."""
    return event.get("channel_type") == "im"


def in_a_dm(event: dict[str, Any]) -> bool:
    """Bolt listener matcher: the message was sent in a direct message with the bot."""
    return is_im(event) or is_direct_message(str(event.get("channel") or ""))
