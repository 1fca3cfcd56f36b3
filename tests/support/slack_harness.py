"""Signed requests as Slack sends them: slash commands, Events API callbacks, interactivity payloads.

The builders (`command_body`, `event_body`, `block_actions_payload`, ...) make the bodies Slack
sends; `SlackSender` signs them with the real scheme (HMAC-SHA256 of `v0:{timestamp}:{body}` with
the signing secret, in `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`) and POSTs
them over HTTP to a running app's `/slack/events`. It can also forge the signature, make the
timestamp stale, and add the `X-Slack-Retry-Num` / `X-Slack-Retry-Reason` headers of a redelivery.

`DispatchSender` sends the same signed bytes in process instead, as bolt-python's own tests do: a
`BoltRequest` of the body and headers through `App.dispatch`, so Bolt still checks the signature,
with no socket in between. Scenario tests of the Slack surfaces use it; what only the HTTP server
shows (body sizes, the early signature check, workers, restarts) is tested over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_bolt import App
from slack_bolt.request import BoltRequest

DEFAULT_SIGNING_SECRET = "standin-signing-secret-0123456789abcdef"
DEFAULT_USER = "U0HUMAN"
DEFAULT_CHANNEL = "C0GENERAL"
DEFAULT_API_APP_ID = "A0GEMBOT"


@dataclass
class Reply:
    """What the app answered: status, body text, headers, and how long it took to answer."""

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float
    sent: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- payloads


def command_body(
    command: str,
    text: str = "",
    *,
    user_id: str = DEFAULT_USER,
    user_name: str = "person",
    channel_id: str = DEFAULT_CHANNEL,
    channel_name: str = "general",
    team_id: str = "T0STANDIN",
    team_domain: str = "standin",
    response_url: str = "https://hooks.slack.com/commands/T0STANDIN/1/none",
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_API_APP_ID,
) -> str:
    """The form body of a slash command."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id
            or f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}",
        }
    )


def event_body(
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = "T0STANDIN",
    api_app_id: str = DEFAULT_API_APP_ID,
    bot_user_id: str = "U0GEMBOT",
    event_time: int | None = None,
) -> dict[str, Any]:
    """An Events API `event_callback` envelope around `event`."""
    return {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": event_time or int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_hex(8),
    }


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def block_actions_payload(
    action_id: str,
    *,
    value: str | None = None,
    block_id: str = "actions",
    action_type: str = "button",
    selected_option: dict[str, Any] | None = None,
    user_id: str = DEFAULT_USER,
    channel_id: str | None = DEFAULT_CHANNEL,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    team_id: str = "T0STANDIN",
    response_url: str | None = "https://hooks.slack.com/actions/T0STANDIN/1/none",
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_API_APP_ID,
) -> dict[str, Any]:
    """A `block_actions` payload: a button (with `value`) or a select (with `selected_option`)."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": f"{time.time():.6f}",
    }
    if value is not None:
        action["value"] = value
    if selected_option is not None:
        action["selected_option"] = selected_option
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": "deprecated-verification-token",
        "container": {"type": "view" if view is not None else "message"},
        "trigger_id": trigger_id or f"{int(time.time())}.1.{secrets.token_hex(8)}",
        "team": {"id": team_id, "domain": "standin"},
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [action],
    }
    if channel_id is not None:
        payload["channel"] = {"id": channel_id, "name": channel_id.lower()}
    if message is not None:
        payload["message"] = message
        payload["container"].update(message_ts=message.get("ts"), channel_id=channel_id, is_ephemeral=False)
    if view is not None:
        payload["view"] = view
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def message_action_payload(
    callback_id: str,
    *,
    message: dict[str, Any],
    user_id: str = DEFAULT_USER,
    channel_id: str = DEFAULT_CHANNEL,
    team_id: str = "T0STANDIN",
    response_url: str = "https://hooks.slack.com/app/T0STANDIN/1/none",
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_API_APP_ID,
) -> dict[str, Any]:
    """A message shortcut (`message_action`) on `message` (which needs at least `ts` and `text`)."""
    return {
        "type": "message_action",
        "token": "deprecated-verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": "standin"},
        "user": _user(user_id, team_id),
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or f"{int(time.time())}.1.{secrets.token_hex(8)}",
        "response_url": response_url,
        "message_ts": message.get("ts"),
        "message": {"type": "message", **message},
        "api_app_id": api_app_id,
    }


def view_submission_payload(
    callback_id: str,
    *,
    values: dict[str, dict[str, dict[str, Any]]],
    private_metadata: str = "",
    user_id: str = DEFAULT_USER,
    team_id: str = "T0STANDIN",
    view_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    api_app_id: str = DEFAULT_API_APP_ID,
) -> dict[str, Any]:
    """A `view_submission` with `values` shaped as Slack sends them: {block_id: {action_id: {...}}}."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "standin"},
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": "deprecated-verification-token",
        "trigger_id": f"{int(time.time())}.1.{secrets.token_hex(8)}",
        "view": {
            "id": view_id or "V" + secrets.token_hex(5).upper(),
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": blocks or [],
            "state": {"values": values},
            "hash": secrets.token_hex(8),
            "title": {"type": "plain_text", "text": "Gembot"},
            "app_id": api_app_id,
            "bot_id": "B0GEMBOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


# --------------------------------------------------------------------------- sending


class SlackSender:
    """Signs and POSTs Slack's requests to `url` (the app's `/slack/events`)."""

    def __init__(
        self, url: str, signing_secret: str = DEFAULT_SIGNING_SECRET, *, timeout: float = 15.0
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.timeout = timeout

    def post(
        self,
        body: str | bytes,
        *,
        content_type: str,
        forge: bool = False,
        stale: bool = False,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
        path: str | None = None,
    ) -> Reply:
        """POST `body` signed as Slack would (`forge` signs with a wrong secret, `stale` 6 minutes ago)."""
        raw = body.encode() if isinstance(body, str) else body
        stamp = timestamp if timestamp is not None else int(time.time()) - (360 if stale else 0)
        sent = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            secret = "forged-" + self.signing_secret if forge else self.signing_secret
            sent["X-Slack-Request-Timestamp"] = str(stamp)
            sent["X-Slack-Signature"] = sign(secret, stamp, raw)
        if retry_num is not None:
            sent["X-Slack-Retry-Num"] = str(retry_num)
            sent["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        sent.update(headers or {})
        return self.deliver(raw, sent, path=path)

    def deliver(self, raw: bytes, sent: dict[str, str], *, path: str | None = None) -> Reply:
        """POST the signed bytes over HTTP and read the answer."""
        url = self.url if path is None else self.url.split("/slack/events")[0] + path
        request = urllib.request.Request(url, data=raw, headers=sent, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, text, got = response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, text, got = error.code, error.read().decode(), dict(error.headers)
        return Reply(status, text, got, time.monotonic() - started, sent)

    def command(
        self, command: str, text: str = "", *, options: dict[str, Any] | None = None, **fields: Any
    ) -> Reply:
        """A slash command; `fields` go into the form (user_id, channel_id, response_url, ...),
        `options` to `post` (forge, stale, retry_num, ...)."""
        body = command_body(command, text, **fields)
        return self.post(body, content_type="application/x-www-form-urlencoded", **(options or {}))

    def event(self, event: dict[str, Any], *, options: dict[str, Any] | None = None, **fields: Any) -> Reply:
        """An Events API callback around `event`; `fields` go to `event_body` (event_id, team_id, ...)."""
        envelope = event_body(event, **fields)
        reply = self.post(json.dumps(envelope), content_type="application/json", **(options or {}))
        reply.sent["event_id"] = envelope["event_id"]
        return reply

    def interactive(self, payload: dict[str, Any], **options: Any) -> Reply:
        """Any interactivity payload, form-encoded as `payload=<json>` as Slack sends it."""
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, content_type="application/x-www-form-urlencoded", **options)


class DispatchSender(SlackSender):
    """Signs Slack's requests like `SlackSender` and hands them to `app.dispatch` in this process."""

    def __init__(self, app: App, signing_secret: str = DEFAULT_SIGNING_SECRET) -> None:
        super().__init__("in-process", signing_secret)
        self.app = app

    def deliver(self, raw: bytes, sent: dict[str, str], *, path: str | None = None) -> Reply:
        """`app.dispatch` of a `BoltRequest` made as Bolt's HTTP adapters make it (body text, headers)."""
        if path is not None:
            raise ValueError(f"in-process requests go to Bolt only, not to {path}: use the HTTP sender")
        request = BoltRequest(body=raw.decode("utf-8"), headers={k.lower(): [v] for k, v in sent.items()})
        started = time.monotonic()
        response = self.app.dispatch(request)
        got = {name: ", ".join(values) for name, values in response.headers.items()}
        return Reply(response.status, response.body, got, time.monotonic() - started, sent)
