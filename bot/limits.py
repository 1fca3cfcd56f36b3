"""Where Gembot answers: GEMBOT_ALLOWED_CHANNELS.

`ChannelGate`, a global middleware run for every request after its workspace is authorized,
turns away requests from channels outside GEMBOT_ALLOWED_CHANNELS, before any listener runs: a
slash command gets a private one-liner in its ack, a button or a shortcut one through its
`response_url`, a mention one by `chat.postEphemeral`; other events are acknowledged and dropped.
The direct message with the bot is always allowed: it reaches no one else, and the daily limits
bound what it costs. A DM between two people is a channel like any other (a slash command works
there too, and its answer is seen by both): its id starts with `D` as well, so a request from a
`D` channel is let through only when it is the requester's own DM with the bot, as
`conversations.open` names it (remembered per person). A `message.im` event needs no check: Slack
sends those only from the app's own DMs. Requests that name no channel (App Home, a modal's
submission, whose shortcut was already checked) pass.

What a request may spend (the daily Gemini limits) is charged by the listeners themselves, each
inside `core.daily_limits.acting_for(deps.meter, request.actor)` (`handlers.request`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from handlers.matchers import is_direct_message, is_im
from handlers.scope import workspace_of

log = logging.getLogger(__name__)

NOT_ENABLED = (
    "Gembot isn't enabled in this channel. Use it in a channel where it is, or in a direct message "
    "with it; whoever runs it can add this channel to GEMBOT_ALLOWED_CHANNELS."
)


class ChannelGate(Middleware):
    """Refuses requests from channels outside `allowed` (None: every channel is allowed)."""

    #: How many people's DM channel ids are remembered (the oldest forgotten first).
    REMEMBERED = 10_000

    def __init__(self, allowed: Iterable[str] | None) -> None:
        self.allowed = None if allowed is None else frozenset(c.upper() for c in allowed)
        self._dms: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._dms_lock = threading.Lock()

    def admits(self, req: BoltRequest) -> bool:
        channel = req.context.channel_id
        if self.allowed is None or not channel or channel.upper() in self.allowed:
            return True
        return is_direct_message(channel) and self._is_dm_with_bot(req, channel)

    def _is_dm_with_bot(self, req: BoltRequest, channel: str) -> bool:
        event = req.body.get("event")
        if isinstance(event, dict) and is_im(event):
            return True
        user, client = req.context.user_id, req.context.client
        if not user or client is None:
            return False
        key = (workspace_of(req.context) or "", user)
        with self._dms_lock:
            known = self._dms.get(key)
        if known is None:
            try:
                opened = client.conversations_open(users=user)
            except SlackClientError as exc:
                log.info("could not tell whether %s is %s's DM with me: %s", channel, user, exc)
                return False
            known = str((opened.get("channel") or {}).get("id") or "")
            if not known:
                return False
            with self._dms_lock:
                self._dms[key] = known
                while len(self._dms) > self.REMEMBERED:
                    self._dms.popitem(last=False)
        return known.upper() == channel.upper()

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        channel = req.context.channel_id
        if self.admits(req):
            return next()
        body = req.body
        log.info("refused a request from channel %s (not in GEMBOT_ALLOWED_CHANNELS)", channel)
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": NOT_ENABLED})
        try:
            self._tell(req)
        except SlackClientError as exc:
            log.info("could not say that channel %s is not enabled: %s", channel, exc)
        return BoltResponse(status=200, body="")

    def _tell(self, req: BoltRequest) -> None:
        body = req.body
        urls = body.get("response_urls") or []
        response_url = body.get("response_url") or (urls[0].get("response_url") if urls else None)
        if response_url:
            WebhookClient(response_url).send(text=NOT_ENABLED, response_type="ephemeral")
            return
        event = body.get("event") or {}
        if event.get("type") == "app_mention" and event.get("user") and req.context.client is not None:
            req.context.client.chat_postEphemeral(
                channel=str(req.context.channel_id), user=event["user"], text=NOT_ENABLED
            )
