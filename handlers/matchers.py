"""Listener matchers shared by the surfaces that read messages.

Bolt already drops events the bot itself caused (its own user id or bot id). These also drop other
bots' messages (a bot answering a bot is how loops start) and the edits and deletions Slack reports
as `message` events. Use them as `app.event("message", matchers=[matchers.from_a_person])`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `message` subtypes that are a person saying something; every other subtype (message_changed,
# message_deleted, bot_message, channel_join, ...) is bookkeeping, not a message to answer.
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})


def is_from_a_person(event: Mapping[str, Any]) -> bool:
    """True for a message (or mention) a person wrote; False for bots, edits, deletions and joins."""
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    if event.get("subtype") not in PERSON_SUBTYPES:
        return False
    return bool(event.get("user"))


def from_a_person(event: dict[str, Any]) -> bool:
    """Bolt listener matcher (Bolt passes the `event` argument by name): see `is_from_a_person`."""
    return is_from_a_person(event)


def in_a_dm(event: dict[str, Any]) -> bool:
    """Bolt listener matcher: the message was sent in a direct message with the bot."""
    return event.get("channel_type") == "im" or str(event.get("channel") or "").startswith("D")
