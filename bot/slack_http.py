"""Bolt's WSGI adapter, with a request Slack would never send answered 4xx instead of 500.

Bolt decodes the body (UTF-8, then JSON, or a form whose `payload` is JSON) and reads its
workspace, user and channel ids before anything checks who sent it; its middleware and listener
matchers then read `event`, `view` and `actions` without checking their type; its signature check
reads the timestamp header as a number. Each raises on what Slack never sends: bytes that are not
UTF-8, truncated JSON, JSON that is not an object, a string where an object belongs
(`"event": "hi"`), empty `actions`, a timestamp that is not a number. Left alone, each is a 500
with a traceback in the log, from an unsigned request as easily as from a signed one, and an
Events API delivery that failed with a 5xx is sent again. A slash command without its user,
channel or `response_url` would run with nowhere to answer. All of these are answered 400 (401 for
the timestamp, as Bolt answers a missing one) with one log line, and reach no listener.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

# What Bolt's parsing raises on a body it cannot read (UnicodeDecodeError and JSONDecodeError are
# ValueErrors; RecursionError is JSON nested thousands deep).
UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)
TIMESTAMP_HEADER = "x-slack-request-timestamp"
# What every slash command from Slack carries.
COMMAND_FIELDS = ("team_id", "user_id", "channel_id", "response_url")


def _refuse(status: int, error: str) -> BoltResponse:
    return BoltResponse(
        status=status,
        body=json.dumps({"ok": False, "error": error}),
        headers={"content-type": "application/json; charset=utf-8"},
    )


def _numeric(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _misshapen(body: dict[str, Any]) -> str | None:
    """The first field Bolt reads unchecked that has the wrong shape, or None."""
    kind = body.get("type")
    if "event" in body and not isinstance(body["event"], dict):
        return "event"
    view = body.get("view")
    needs_view = kind in ("view_submission", "view_closed") or view is not None
    if needs_view and not isinstance(view, dict):
        return "view"
    actions = body.get("actions")
    needs_actions = kind == "block_actions" or actions is not None
    if needs_actions and not (
        isinstance(actions, list) and actions and all(isinstance(a, dict) for a in actions)
    ):
        return "actions"
    return None


class SlackHandler(SlackRequestHandler):
    """`SlackRequestHandler` whose `dispatch` refuses an unreadable request (see the module doc)."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            bolt_request = BoltRequest(
                body=request.get_body(), query=request.query_string, headers=request.get_headers()
            )
        except UNREADABLE as exc:
            log.info("refused a Slack request Bolt cannot read (%s)", type(exc).__name__)
            return _refuse(400, "bad_request")
        body = bolt_request.body
        if misshapen := _misshapen(body):
            log.info("refused a Slack request whose %s is not what Slack sends", misshapen)
            return _refuse(400, "bad_request")
        if body.get("command") is not None and not all(body.get(name) for name in COMMAND_FIELDS):
            log.info(
                "refused a slash command without %s", ", ".join(n for n in COMMAND_FIELDS if not body.get(n))
            )
            return _refuse(400, "bad_request")
        stamps = bolt_request.headers.get(TIMESTAMP_HEADER) or []
        if stamps and not _numeric(stamps[0]):
            log.info("refused a Slack request whose timestamp is not a number")
            return _refuse(401, "invalid_request")
        return self.app.dispatch(bolt_request)
