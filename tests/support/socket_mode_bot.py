"""The bot over Socket Mode, as `gembot serve --socket` runs it, against the Slack, Socket Mode and
Gemini stand-ins.

`SocketModeBot` builds the app with `bot.cli.serve.socket_mode_handler` (the real slack_bolt
`SocketModeHandler`, its built-in slack_sdk client, a `Lifecycle`), with no signing secret, as a
Socket Mode install has none, and connects it to a `SocketModeStandIn` through the Web API
stand-in's `apps.connections.open`. Its `send_*` send what Slack would send as envelopes and return
them; `socket.wait_for_ack(envelope)` reads the app's ack. The names mirror `BotServer`'s
(`slack`, `gemini`, `deps`, `team`, `settle`), so the surfaces' helpers (`label_support.seed`) work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.cli.serve import socket_mode_handler
from bot.lifecycle import Lifecycle
from core.settings import Settings
from handlers.deps import Deps
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.gemini import GeminiStandIn
from tests.support.slack_fixtures import TrackingExecutor, bot_settings, stop_worker
from tests.support.slack_harness import (
    command_body,
    event_body,
    message_action_payload,
    view_submission_payload,
)
from tests.support.slack_standin import SlackStandIn
from tests.support.socket_mode_standin import Envelope, SocketModeStandIn


def socket_mode_settings(
    slack: SlackStandIn,
    socket: SocketModeStandIn,
    gemini: GeminiStandIn | None,
    database_url: str,
    *,
    env: dict[str, str] | None = None,
) -> Settings:
    """`bot_settings` for Socket Mode: the app-level token, and no signing secret."""
    values = {"SLACK_APP_TOKEN": socket.app_token, "SLACK_SIGNING_SECRET": ""}
    values.update(env or {})
    return bot_settings(slack, gemini, database_url, env=values)


@dataclass
class SocketModeBot:
    """One Socket Mode process for a test; see the module doc."""

    slack: SlackStandIn
    socket: SocketModeStandIn
    gemini: GeminiStandIn | None
    settings: Settings
    deps: Deps | None = None
    lifecycle: Lifecycle | None = None
    handler: SocketModeHandler | None = None
    _executor: TrackingExecutor | None = None

    def start(self) -> SocketModeBot:
        """Build the app as `gembot serve --socket` does, start its lifecycle, connect, and wait
        for the connection (the Web API calls made while building it are forgotten)."""
        self.deps = Deps.open(self.settings, embedder=BagOfWordsEmbedder())
        self._executor = TrackingExecutor(8)
        self.lifecycle = Lifecycle(self.deps, executor=self._executor)
        self.handler = socket_mode_handler(self.deps, self.lifecycle)
        self.slack.clear_calls()
        connected = len(self.socket.connections())
        self.lifecycle.start(self.handler.app)
        self.handler.connect()
        self.socket.wait_for_connections(connected + 1)
        return self

    def stop(self) -> None:
        """Disconnect, then stop as `gembot serve` does: running listeners finish; close the database.

        Closing the client takes up to 3 s: slack_sdk's receiving thread waits out its socket's
        receive timeout before it lets go of the socket."""
        if self.handler is not None:
            self.handler.close()
            self.handler = None
        stop_worker(self.lifecycle, self._executor, self.deps)
        self.lifecycle, self._executor, self.deps = None, None, None

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every listener started so far has finished."""
        assert self._executor is not None
        self._executor.wait_idle(timeout)

    @property
    def team(self) -> str:
        return self.slack.team_id

    # -- what Slack sends -----------------------------------------------------------------

    def send_command(self, command: str, text: str = "", **fields: Any) -> Envelope:
        """A `slash_commands` envelope: the command's fields as a JSON object (over HTTP, a form)."""
        fields.setdefault("response_url", self.slack.response_url())
        fields.setdefault("team_id", self.team)
        payload = dict(parse_qsl(command_body(command, text, **fields), keep_blank_values=True))
        return self.socket.send("slash_commands", payload)

    def send_event(
        self, event: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = "", **fields: Any
    ) -> Envelope:
        """An `events_api` envelope around an `event_callback` (`fields` go to `event_body`)."""
        fields.setdefault("team_id", self.team)
        fields.setdefault("bot_user_id", self.slack.bot_user_id)
        payload = event_body(event, **fields)
        return self.socket.send("events_api", payload, retry_attempt=retry_attempt, retry_reason=retry_reason)

    def send_shortcut(self, callback_id: str, *, message: dict[str, Any], **fields: Any) -> Envelope:
        """An `interactive` envelope with a message shortcut on `message`."""
        fields.setdefault("team_id", self.team)
        fields.setdefault("response_url", self.slack.response_url())
        payload = message_action_payload(callback_id, message=message, **fields)
        # Through JSON, as it travels: nothing the app gets can be a Python-only object.
        return self.socket.send("interactive", json.loads(json.dumps(payload)))

    def send_view_submission(
        self, callback_id: str, *, values: dict[str, dict[str, dict[str, Any]]], **fields: Any
    ) -> Envelope:
        """An `interactive` envelope with a modal submitted with `values`; Slack lets its ack carry
        a `response_action` (`accepts_response_payload`)."""
        fields.setdefault("team_id", self.team)
        payload = view_submission_payload(callback_id, values=values, **fields)
        return self.socket.send("interactive", json.loads(json.dumps(payload)))
