"""One Slack request, read once: `SlackRequest`.

Every listener starts by building it from what Bolt hands over (the payload and `context`), with
the constructor for its kind of request: `of_command`, `of_event`, `of_action` (a button or a
select), `of_view` (a modal's submission) and `of_shortcut` (a message shortcut). It holds the
request's workspace key (`handlers.scope`), its team and enterprise, the user, the channel, thread
and message, the `response_url`, the Web API client and the bot token, and owns the request's
`replier`. Surfaces take `(deps, request)` and nothing else about the request.

The workspace comes from Bolt's `context`, not from the payload (see `handlers.scope`), so a
command, an event and a button in one workspace get the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from slack_sdk import WebClient

from core.daily_limits import Actor
from handlers.replies import Replier, ReplyTo
from handlers.scope import workspace_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackRequest:
    """What one Slack request is about and where it is answered (see the module doc).

    `thread_ts` is the thread answers go into (None: the channel itself); `message_ts` the
    message the request is about (an event's own, a button's message, a shortcut's message).
    The client and the token never show in `repr()`.
    """

    workspace: str
    team: str | None
    enterprise: str | None
    user: str | None
    channel: str
    client: WebClient = field(repr=False, compare=False)
    thread_ts: str | None = None
    message_ts: str | None = None
    response_url: str | None = None
    token: str = field(default="", repr=False, compare=False)
    logger: logging.Logger = field(default=log, repr=False, compare=False)

    # -- constructors, one per kind of request ------------------------------------------------

    @classmethod
    def of_command(cls, command: Mapping[str, Any], context: Mapping[str, Any]) -> SlackRequest:
        """A slash command: answered in its channel, privately through its `response_url`."""
        return cls._build(
            context,
            user=command.get("user_id"),
            channel=command.get("channel_id"),
            response_url=command.get("response_url"),
        )

    @classmethod
    def of_event(
        cls, event: Mapping[str, Any], context: Mapping[str, Any], *, in_thread: bool = True
    ) -> SlackRequest:
        """A message event (a mention, a DM): answered in its thread, starting one unless
        `in_thread` is False."""
        ts = event.get("ts")
        return cls._build(
            context,
            user=event.get("user"),
            channel=event.get("channel"),
            thread_ts=event.get("thread_ts") or (ts if in_thread else None),
            message_ts=ts,
        )

    @classmethod
    def of_action(cls, body: Mapping[str, Any], context: Mapping[str, Any]) -> SlackRequest:
        """A `block_actions` payload (a button or a select) or a message shortcut: answered where
        its message is, privately through its `response_url`."""
        message = body.get("message") or {}
        container = body.get("container") or {}
        urls = body.get("response_urls") or []
        return cls._build(
            context,
            user=(body.get("user") or {}).get("id"),
            channel=(body.get("channel") or {}).get("id") or container.get("channel_id"),
            thread_ts=message.get("thread_ts"),
            message_ts=message.get("ts") or container.get("message_ts") or body.get("message_ts"),
            response_url=body.get("response_url") or (urls[0].get("response_url") if urls else None),
        )

    #: A message shortcut's payload names its channel, message and `response_url` as an action's does.
    of_shortcut = of_action

    @classmethod
    def of_view(
        cls,
        body: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        channel: str | None = None,
        response_url: str | None = None,
    ) -> SlackRequest:
        """A modal's submission, which names no channel: `channel` and `response_url` are where
        the modal was opened from (kept in its private metadata), when known. Without them, the
        first `response_urls` entry Slack sent (an input block asking for a conversation)."""
        urls = body.get("response_urls") or []
        return cls._build(
            context,
            user=(body.get("user") or {}).get("id"),
            channel=channel,
            response_url=response_url or (urls[0].get("response_url") if urls else None),
        )

    @classmethod
    def _build(
        cls,
        context: Mapping[str, Any],
        *,
        user: Any,
        channel: Any,
        thread_ts: Any = None,
        message_ts: Any = None,
        response_url: Any = None,
    ) -> SlackRequest:
        team, enterprise = context.get("team_id"), context.get("enterprise_id")
        client = context.get("client")
        if not isinstance(client, WebClient):
            client = WebClient()
        logger = context.get("logger")
        return cls(
            workspace=workspace_of(context),
            team=str(team) if team else None,
            enterprise=str(enterprise) if enterprise else None,
            user=str(user) if user else None,
            channel=str(channel or ""),
            thread_ts=str(thread_ts) if thread_ts else None,
            message_ts=str(message_ts) if message_ts else None,
            response_url=str(response_url) if response_url else None,
            client=client,
            token=str(context.get("bot_token") or client.token or ""),
            logger=logger if isinstance(logger, logging.Logger) else log,
        )

    # -- what the request is for ------------------------------------------------------------

    @property
    def actor(self) -> Actor:
        """Whom the Gemini calls made for this request are charged to (`core.daily_limits`)."""
        return Actor(self.workspace, self.user)

    def reply_to(self) -> ReplyTo:
        """Where this request's answers go; a bulk job keeps it (`ReplyTo.to_json`)."""
        return ReplyTo(
            channel=self.channel,
            user=self.user,
            thread_ts=self.thread_ts,
            response_url=self.response_url,
            team=self.team,
            enterprise=self.enterprise,
        )

    @cached_property
    def replier(self) -> Replier:
        """The one replier of this request: its "working" message, its errors in words."""
        return Replier(self.client, self.reply_to(), logger=self.logger)
