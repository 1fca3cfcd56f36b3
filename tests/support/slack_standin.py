"""A loopback stand-in for the Slack Web API, for tests that drive the real `slack_sdk` WebClient.

Point `WebClient(base_url=standin.api_url)` at it (slack_sdk wants the trailing slash). It speaks
enough of Slack's wire protocol that the SDK cannot tell it from Slack: form-encoded and JSON
bodies, parameters in the query string (files.getUploadURLExternal sends them there), the
`Authorization: Bearer` token, `{"ok": false, "error": ...}` answers with HTTP 200, 429 with
`Retry-After`, the three-step `files_upload_v2` dance, and `url_private_download` files that answer
an HTML sign-in page with status 200 to a request without the bot token, as Slack does (or, when
told to, a redirect; remote files are only a link to another host). For OAuth
install, `approve_install` plays the person approving the app in another workspace: its code goes
through `oauth.v2.access` (client id and secret in HTTP Basic auth) for that workspace's own bot
token, which the stand-in then accepts and `auth.test` describes as that workspace. With
`rotating=True` the install gets an expiring `xoxe.xoxb-` token and a refresh token, which
`oauth.v2.access` with `grant_type=refresh_token` exchanges for a new pair, as Slack's token
rotation does.

It keeps a little state, so that what a bot does can be read back as a person would see it:
channels (with the bot a member or not), the messages in them (posted, updated, deleted, or seeded
by the test), uploaded files, opened and published views, users, and `response_url` posts. Every
call is recorded (`calls`, `wait_for`), and faults are injected per method (`fail_next`,
`latency`).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import json
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.support.loopback import Loopback

if TYPE_CHECKING:
    from tests.support.socket_mode_standin import SocketModeStandIn

__all__ = ["SlackCall", "SlackStandIn", "UploadedFile"]

DEFAULT_BOT_TOKEN = "xoxb-standin-0000-bot-token"
DEFAULT_TEAM_ID = "T0STANDIN"
DEFAULT_BOT_USER_ID = "U0GEMBOT"
DEFAULT_BOT_ID = "B0GEMBOT"
DEFAULT_APP_ID = "A0GEMBOT"
DEFAULT_CLIENT_ID = "1111111111.2222222222"
DEFAULT_CLIENT_SECRET = "standin-client-secret-0123456789"

# Parameters slack_sdk sends as JSON strings inside a form body.
_JSON_PARAMS = ("blocks", "attachments", "view", "files", "metadata", "user_auth_blocks", "chunks")

SIGN_IN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Slack</title></head><body>"
    b"<h1>Sign in to Stand-in</h1><form action='/signin'><input name='email'></form></body></html>"
)


@dataclass
class SlackCall:
    """One request as it arrived: `method` is the Web API method ("chat.postMessage"), or
    "upload" (the upload URL), "download" (a file URL) or "response_url".

    `params` merges the query string and the body, JSON-valued form fields decoded; `token` is the
    one the request carried (Bearer header or `token` parameter); `time` is `time.monotonic()`.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    time: float
    token: str | None
    status: int = 0
    response: Any = None

    @property
    def ok(self) -> bool:
        return isinstance(self.response, dict) and bool(self.response.get("ok"))


@dataclass
class UploadedFile:
    """A file that went through files.getUploadURLExternal, the upload URL and completeUploadExternal."""

    id: str
    filename: str
    length: int
    data: bytes = b""
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    alt_txt: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass
class _Fault:
    method: str
    remaining: int
    error: str | None
    status: int | None
    retry_after: int | None


@dataclass
class _Channel:
    id: str
    name: str
    member: bool
    private: bool
    messages: list[dict[str, Any]] = field(default_factory=list)


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=dict(headers or {}))


def _rotating_token(team_id: str) -> str:
    """An expiring bot token, about as long as Slack's (some 170 characters)."""
    return f"xoxe.xoxb-1-{team_id}-{secrets.token_urlsafe(114)}"


class SlackStandIn(Loopback):
    """A loopback Slack Web API on 127.0.0.1 with a random port.

    Use it as a context manager (or `start()` / `stop()`); point slack_sdk at `api_url` with
    `bot_token`. Set the scene with `add_channel`, `add_user`, `add_message`, `add_file` and
    `response_url`; inject faults with `fail_next` and `latency`; read back with `calls`,
    `wait_for`, `messages`, `uploads`, `views`, `home_views` and `response_posts`.
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        team_id: str = DEFAULT_TEAM_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        super().__init__()
        self._calls: list[SlackCall] = []
        self._faults: list[_Fault] = []
        self._latency: dict[str | None, float] = {}
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._file_data: dict[str, bytes] = {}
        self._redirects: dict[str, str] = {}
        self._hidden: set[str] = set()
        self._uploads: dict[str, UploadedFile] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._home: dict[str, dict[str, Any]] = {}
        self._ims: dict[str, str] = {}  # user id -> the id of their DM with the bot
        self._responses: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._clock = itertools.count(1)
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET
        # OAuth: installed workspaces' bot tokens -> their auth.test answer; codes not exchanged yet
        # -> oauth.v2.access's answer, and the auth.test answer its token will get.
        self._installed: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        # Token rotation: unused refresh tokens -> the bot token they replace.
        self._refresh: dict[str, str] = {}
        # Socket Mode: the server `apps.connections.open` hands out URLs of (serve_socket_mode).
        self._socket_mode: SocketModeStandIn | None = None

    # ------------------------------------------------------------------ lifecycle

    def _failure(self, exc: Exception) -> _Reply:
        return _json(500, {"ok": False, "error": f"standin_failure: {exc!r}"})

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:PORT/api/`: the `base_url` for WebClient and SLACK_API_URL."""
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ the scene

    def add_channel(
        self, channel_id: str, *, name: str | None = None, member: bool = True, private: bool = False
    ) -> None:
        """Declare a channel; with `member=False` the bot must join it (public) or be invited (private).

        Channels never declared exist on first use, with the bot a member.
        """
        with self._lock:
            found = self._channel(channel_id)
            found.name = name or found.name
            found.member = member
            found.private = private

    def add_user(
        self, user_id: str, *, name: str | None = None, real_name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A user for users.info (users never added get a plausible profile from their id)."""
        user = _user(user_id, name=name, real_name=real_name)
        user.update(extra)
        with self._lock:
            self._users[user_id] = user
        return user

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U0HUMAN",
        ts: str | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Seed a message for conversations.history (and .replies when it is in a thread)."""
        with self._lock:
            message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts or self._ts()}
            if thread_ts:
                message["thread_ts"] = thread_ts
            message.update(extra)
            self._channel(channel).messages.append(message)
            self._changed.notify_all()
            return dict(message)

    def add_file(
        self,
        data: bytes,
        name: str,
        mimetype: str | None = None,
        *,
        user: str = "U0HUMAN",
        title: str | None = None,
    ) -> dict[str, Any]:
        """Host a file as Slack would; returns the file object events and files.info carry."""
        with self._lock:
            file_id = "F" + secrets.token_hex(5).upper()
            info = self._file_object(file_id, name, mimetype, len(data), user=user, title=title)
            self._files[file_id] = info
            self._file_data[file_id] = bytes(data)
            return dict(info)

    def add_remote_file(
        self, name: str, url: str, mimetype: str | None = None, *, user: str = "U0HUMAN"
    ) -> dict[str, Any]:
        """A remote file, as `files.remote.add` makes it: Slack keeps only a link, `url_private` is
        `url` (on any host) and there is no `url_private_download`; files.info describes it too."""
        with self._lock:
            file_id = "F" + secrets.token_hex(5).upper()
            info = self._file_object(file_id, name, mimetype, 0, user=user, title=None)
            del info["url_private_download"], info["size"]
            info.update(
                mode="external", is_external=True, external_type="app", external_url=url, url_private=url
            )
            self._files[file_id] = info
            return dict(info)

    def redirect_file(self, file_id: str, location: str) -> None:
        """From now on the file's URLs answer a request with the bot token by a 302 to `location`."""
        with self._lock:
            self._redirects[file_id] = location

    def hide_file(self, file_id: str) -> None:
        """From now on the bot may not read the file: its URLs answer the sign-in page even to the
        bot token, as Slack does for a token without `files:read`."""
        with self._lock:
            self._hidden.add(file_id)

    def approve_install(
        self,
        team_id: str,
        *,
        team_name: str | None = None,
        enterprise_id: str | None = None,
        installer: str = "U0INSTALLER",
        scope: str = "commands,chat:write",
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        rotating: bool = False,
        expires_in: int = 43_200,
    ) -> str:
        """A person in `team_id` approved the install: the one-time code Slack puts in the redirect.

        `oauth.v2.access` exchanges it for a new bot token of that workspace (`token_of(team_id)`);
        with `rotating`, one that expires in `expires_in` seconds, and a refresh token.
        """
        code = f"{team_id}.{secrets.token_hex(8)}"
        token = _rotating_token(team_id) if rotating else f"xoxb-{team_id}-{secrets.token_hex(6)}"
        name = team_name or f"Workspace {team_id}"
        enterprise = {"id": enterprise_id, "name": f"Org {enterprise_id}"} if enterprise_id else None
        with self._lock:
            access = {
                "app_id": DEFAULT_APP_ID,
                "authed_user": {"id": installer},
                "scope": scope,
                "token_type": "bot",
                "access_token": token,
                "bot_user_id": bot_user_id,
                "team": {"id": team_id, "name": name},
                "enterprise": enterprise,
                "is_enterprise_install": False,
            }
            if rotating:
                access.update(refresh_token=self._refresh_token_for(token), expires_in=expires_in)
            identity = {
                "url": f"https://{team_id.lower()}.slack.com/",
                "team": name,
                "user": "gembot",
                "team_id": team_id,
                "user_id": bot_user_id,
                "bot_id": bot_id,
                "enterprise_id": enterprise_id,
                "is_enterprise_install": False,
            }
            self._codes[code] = (access, identity)
        return code

    def token_of(self, team_id: str) -> str | None:
        """The live bot token an OAuth install gave `team_id`, if any."""
        with self._lock:
            return next((t for t, who in self._installed.items() if who["team_id"] == team_id), None)

    def revoke(self, team_id: str) -> None:
        """What uninstalling does on Slack's side: the workspace's tokens stop working."""
        with self._lock:
            for token in [t for t, who in self._installed.items() if who["team_id"] == team_id]:
                del self._installed[token]

    def response_url(self, key: str | None = None) -> str:
        """A fresh `response_url` on the stand-in; what is posted to it is in `response_posts`."""
        return f"{self.base_url}/response/{key or secrets.token_hex(6)}"

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        n: int = 1,
    ) -> None:
        """Answer the next `n` calls of `method` with a failure.

        `error="not_in_channel"` (or any code): HTTP 200 with `{"ok": false, "error": ...}`.
        `status=429`: `ratelimited` with a `Retry-After` header (`retry_after`, default 1 s).
        `status=500` (or another 5xx): a server error. `method` may also be "upload",
        "download" or "response_url".
        """
        if (error is None) == (status is None):
            raise ValueError("give exactly one of error= or status=")
        with self._lock:
            self._faults.append(_Fault(method, n, error, status, retry_after))

    def latency(self, seconds: float, *, method: str | None = None) -> None:
        """Hold calls of `method` (or every call) for `seconds` before answering; 0 turns it off."""
        with self._lock:
            self._latency[method] = seconds

    # ------------------------------------------------------------------ reading back

    def calls(self, method: str | None = None) -> list[SlackCall]:
        """Recorded calls in arrival order, optionally of one method."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> SlackCall:
        found = self.calls(method)
        if not found:
            raise AssertionError(f"no {method} call was recorded; calls: {self.methods()}")
        return found[-1]

    def methods(self) -> list[str]:
        """The method of every recorded call, in order: handy in assertion messages."""
        with self._lock:
            return [c.method for c in self._calls]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[SlackCall]:
        """Wait until at least `count` calls of `method` have been answered; returns them all.

        Answers are posted by lazy listeners on background threads, so a test waits for them.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if c.method == method and c.status]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self._calls]
                    raise AssertionError(
                        f"waited {timeout:g} s for {count} {method} call(s), got {len(found)}; calls: {seen}"
                    )
                self._changed.wait(left)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages as they are now (posts, updates and deletes applied), oldest first."""
        with self._lock:
            return [dict(m) for m in self._channel(channel).messages]

    def uploads(self) -> list[UploadedFile]:
        """Completed uploads, in order."""
        with self._lock:
            return [u for u in self._uploads.values() if u.completed]

    def views(self) -> dict[str, dict[str, Any]]:
        """Modals opened (and updated) by id."""
        with self._lock:
            return {k: dict(v) for k, v in self._views.items()}

    def home_views(self) -> dict[str, dict[str, Any]]:
        """The App Home view last published for each user."""
        with self._lock:
            return {k: dict(v) for k, v in self._home.items()}

    def response_posts(self, url: str | None = None) -> list[dict[str, Any]]:
        """What was posted to `url` (or to any response_url), in order."""
        with self._lock:
            if url is not None:
                return list(self._responses.get(url.rsplit("/", 1)[-1], []))
            return [post for posts in self._responses.values() for post in posts]

    def wait_for_response(
        self, url: str | None = None, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.response_posts(url)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout:g} s for {count} response_url post(s), got {len(found)}"
                )
            time.sleep(0.01)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------ dispatch

    def _handle(self, verb: str, target: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        split = urlsplit(target)
        lower = {k.lower(): v for k, v in headers.items()}
        path = split.path
        if path.startswith("/api/"):
            method = path[len("/api/") :]
        elif path.startswith("/upload/"):
            method = "upload"
        elif path.startswith("/files-pri/"):
            method = "download"
        elif path.startswith("/response/"):
            method = "response_url"
        else:
            method = "unknown"
        params = self._params(split.query, lower.get("content-type", ""), body, method)
        token = None
        auth = lower.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        elif isinstance(params.get("token"), str):
            token = params["token"]
        call = SlackCall(method, params, lower, body, time.monotonic(), token)
        with self._lock:
            self._calls.append(call)
            delay = self._latency.get(method, self._latency.get(None, 0.0))
        if delay and self._stopping.wait(delay):
            return None
        reply = self._answer(call, path)
        with self._changed:
            call.status = reply.status
            if reply.content_type.startswith("application/json"):
                with contextlib.suppress(ValueError):
                    call.response = json.loads(reply.body)
            self._changed.notify_all()
        return reply

    @staticmethod
    def _params(query: str, content_type: str, body: bytes, method: str) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if method in ("upload", "download"):
            return params
        if body and "json" in content_type:
            with contextlib.suppress(ValueError):
                loaded = json.loads(body)
                if isinstance(loaded, dict):
                    params.update(loaded)
        elif body and "x-www-form-urlencoded" in content_type:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
        for name in _JSON_PARAMS:
            if isinstance(params.get(name), str):
                with contextlib.suppress(ValueError):
                    params[name] = json.loads(params[name])
        return params

    def _fault_for(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    def _answer(self, call: SlackCall, path: str) -> _Reply:
        fault = self._fault_for(call.method)
        if fault is not None:
            if fault.status == 429:
                after = str(fault.retry_after if fault.retry_after is not None else 1)
                return _json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": after})
            if fault.status is not None:
                return _Reply(fault.status, b"<html><body>Internal Server Error</body></html>", "text/html")
            return _json(200, {"ok": False, "error": fault.error})
        if call.method == "download":
            return self._download(call, path)
        if call.method == "upload":
            return self._upload(call, path)
        if call.method == "response_url":
            return self._response_post(call, path)
        if call.method == "unknown":
            return _Reply(404, b"not found", "text/plain")
        if call.method == "oauth.v2.access":
            return self._oauth_v2_access(call)
        if call.method == "apps.connections.open":
            return self._apps_connections_open(call)
        if call.token is None:
            return _json(200, {"ok": False, "error": "not_authed"})
        if not self._known_token(call.token):
            return _json(200, {"ok": False, "error": "invalid_auth"})
        if call.method == "auth.test" and call.token != self.bot_token:
            with self._lock:
                identity = self._installed.get(call.token)
            if identity is not None:
                return _json(200, {"ok": True, **identity})
        if call.method == "auth.revoke":
            # Slack revokes the token the call is made with (`test=1` only checks it could).
            if call.params.get("test") not in ("1", "true", True):
                with self._lock:
                    self._installed.pop(call.token, None)
            return _json(200, {"ok": True, "revoked": call.params.get("test") not in ("1", "true", True)})
        handler = getattr(self, "_api_" + call.method.replace(".", "_"), None)
        if handler is None:
            return _json(404, {"ok": False, "error": "unknown_method", "req_method": call.method})
        try:
            with self._changed:
                payload = handler(call.params)
                self._changed.notify_all()
        except _ApiError as exc:
            return _json(200, {"ok": False, "error": exc.error, **exc.extra})
        return _json(200, {"ok": True, **payload})

    # ------------------------------------------------------------------ helpers (lock held)

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._clock):06d}"

    def _channel(self, channel_id: str) -> _Channel:
        found = self._channels.get(channel_id)
        if found is None:
            found = _Channel(channel_id, channel_id.lower(), member=True, private=channel_id.startswith("G"))
            self._channels[channel_id] = found
        return found

    def _postable(self, channel_id: str | None) -> _Channel:
        if not channel_id:
            raise _ApiError("channel_not_found")
        found = self._channel(channel_id)
        if not found.member:
            raise _ApiError("not_in_channel")
        return found

    def _message(self, channel: _Channel, ts: str | None) -> dict[str, Any]:
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        raise _ApiError("message_not_found")

    def _file_object(
        self, file_id: str, name: str, mimetype: str | None, size: int, *, user: str, title: str | None
    ) -> dict[str, Any]:
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        filetype = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        url = f"{self.base_url}/files-pri/{self.team_id}-{file_id}/{quote(name)}"
        return {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": self.team_id,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "size": size,
            "url_private": url,
            "url_private_download": url.replace(f"-{file_id}/", f"-{file_id}/download/"),
            "permalink": f"https://standin.slack.com/files/{user}/{file_id}/{quote(name)}",
        }

    # ------------------------------------------------------------------ non-API URLs

    def _known_token(self, token: str | None) -> bool:
        with self._lock:
            return token == self.bot_token or token in self._installed

    def _oauth_v2_access(self, call: SlackCall) -> _Reply:
        auth = call.headers.get("authorization", "")
        client_id, client_secret = call.params.get("client_id"), call.params.get("client_secret")
        if auth.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        if client_id != self.client_id:
            return _json(200, {"ok": False, "error": "invalid_client_id"})
        if client_secret != self.client_secret:
            return _json(200, {"ok": False, "error": "bad_client_secret"})
        if call.params.get("grant_type") == "refresh_token":
            return self._refresh_access(str(call.params.get("refresh_token") or ""))
        with self._lock:
            found = self._codes.pop(str(call.params.get("code") or ""), None)
            if found is None:
                return _json(200, {"ok": False, "error": "invalid_code"})
            access, identity = found
            self._installed[access["access_token"]] = identity
        return _json(200, {"ok": True, **access})

    def _refresh_token_for(self, token: str) -> str:
        refresh = f"xoxe-1-{secrets.token_urlsafe(108)}"
        self._refresh[refresh] = token
        return refresh

    def _refresh_access(self, refresh: str) -> _Reply:
        """Token rotation: the refresh token (used up) for a new bot token, the old one retired."""
        with self._lock:
            old = self._refresh.pop(refresh, None)
            identity = self._installed.pop(old, None) if old is not None else None
            if identity is None:
                return _json(200, {"ok": False, "error": "invalid_refresh_token"})
            token = _rotating_token(identity["team_id"])
            self._installed[token] = identity
            answer = {
                "access_token": token,
                "refresh_token": self._refresh_token_for(token),
                "expires_in": 43_200,
                "token_type": "bot",
                "team": {"id": identity["team_id"], "name": identity["team"]},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        return _json(200, {"ok": True, **answer})

    # ------------------------------------------------------------------ Socket Mode

    def serve_socket_mode(self, server: SocketModeStandIn) -> None:
        """Answer `apps.connections.open` (app-level token) with URLs of `server`
        (tests/support/socket_mode_standin.py)."""
        with self._lock:
            self._socket_mode = server

    def _apps_connections_open(self, call: SlackCall) -> _Reply:
        with self._lock:
            server = self._socket_mode
        if server is None:
            # No app-level token is known: Socket Mode is not on for this app.
            return _json(200, {"ok": False, "error": "invalid_auth" if call.token else "not_authed"})
        return _json(200, server.connections_open(call.token))

    def _download(self, call: SlackCall, path: str) -> _Reply:
        match = re.match(r"/files-pri/[^/]+-(F[0-9A-Z]+)/", path)
        with self._lock:
            hidden = match is not None and match.group(1) in self._hidden
        if hidden or not self._known_token(call.token):
            # What Slack does to a request without a token that may read the file.
            return _Reply(200, SIGN_IN_PAGE, "text/html; charset=utf-8")
        with self._lock:
            data = self._file_data.get(match.group(1)) if match else None
            info = self._files.get(match.group(1)) if match else None
            location = self._redirects.get(match.group(1)) if match else None
        if location is not None:
            return _Reply(302, b"", "text/plain", {"Location": location})
        if data is None or info is None:
            return _Reply(404, b"File not found", "text/plain")
        return _Reply(200, data, info["mimetype"])

    def _upload(self, call: SlackCall, path: str) -> _Reply:
        file_id = path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None:
                return _Reply(404, b"upload not found", "text/plain")
            upload.data = call.body
        return _Reply(200, f"OK - {len(call.body)}".encode(), "text/plain")

    def _response_post(self, call: SlackCall, path: str) -> _Reply:
        key = path.rstrip("/").rsplit("/", 1)[-1]
        with self._changed:
            self._responses[key].append(dict(call.params))
            self._changed.notify_all()
        return _Reply(200, b"ok", "text/html")

    # ------------------------------------------------------------------ Web API methods

    def _api_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "gembot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post(self, p: dict[str, Any], *, ephemeral: bool = False) -> tuple[_Channel, dict[str, Any]]:
        channel = self._postable(p.get("channel"))
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            raise _ApiError("no_text")
        blocks = p.get("blocks")
        if isinstance(blocks, list) and len(blocks) > 50:
            raise _ApiError(
                "invalid_blocks", errors=["must provide an array of at most 50 items [json-pointer:/blocks]"]
            )
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": DEFAULT_APP_ID,
            "text": p.get("text", ""),
            "ts": self._ts(),
        }
        for name in ("blocks", "attachments", "thread_ts", "metadata"):
            if p.get(name):
                message[name] = p[name]
        if ephemeral:
            message["ephemeral_user"] = p.get("user")
        return channel, message

    def _api_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._post(p)
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": message}

    def _api_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user"):
            raise _ApiError("user_not_found")
        _, message = self._post(p, ephemeral=True)
        return {"message_ts": message["ts"]}

    def _api_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p.get("channel"))
        message = self._message(channel, p.get("ts"))
        blocks = p.get("blocks")
        if isinstance(blocks, list) and len(blocks) > 50:
            raise _ApiError("invalid_blocks")
        if "text" in p:
            message["text"] = p["text"]
        if "blocks" in p:
            message["blocks"] = p["blocks"]
        if message.get("streaming"):
            message["streaming"] = False  # an update ends a stream: its text is what was sent
        message["edited"] = {"user": self.bot_user_id, "ts": self._ts()}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": message,
        }

    # Streaming (chat.startStream / appendStream / stopStream): a reply in a thread whose text
    # grows with each call until it is stopped; the message is in the channel's history all along.

    def _api_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p.get("channel"))
        if not p.get("thread_ts"):
            raise _ApiError("invalid_arguments", errors=["thread_ts is required"])
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": DEFAULT_APP_ID,
            "text": _streamed_text(p),
            "ts": self._ts(),
            "thread_ts": p["thread_ts"],
            "streaming": True,
        }
        for name in ("recipient_user_id", "recipient_team_id"):
            if p.get(name):
                message[name] = p[name]
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"]}

    def _streaming(self, p: dict[str, Any]) -> tuple[_Channel, dict[str, Any]]:
        channel = self._postable(p.get("channel"))
        message = self._message(channel, p.get("ts"))
        if not message.get("streaming"):
            raise _ApiError("message_not_in_streaming_state")
        return channel, message

    def _api_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._streaming(p)
        message["text"] += _streamed_text(p)
        return {"channel": channel.id, "ts": message["ts"]}

    def _api_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._streaming(p)
        message["text"] += _streamed_text(p)
        if p.get("blocks"):
            message["blocks"] = p["blocks"]
        message["streaming"] = False
        return {"channel": channel.id, "ts": message["ts"], "message": dict(message)}

    def _api_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel_id") or not p.get("thread_ts") or "status" not in p:
            raise _ApiError("invalid_arguments")
        self._postable(p["channel_id"])
        return {}

    def wait_for_streams(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` streams have been stopped; returns their messages as they are now,
        in the order they were stopped (each with its `channel`)."""
        found = []
        for call in self.wait_for("chat.stopStream", count=count, timeout=timeout):
            if not call.ok:
                continue
            channel = str(call.params["channel"])
            with self._lock:
                message = dict(self._message(self._channel(channel), call.params["ts"]))
            found.append({**message, "channel": channel})
        return found

    def stream_messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages that were streamed (`chat.startStream`), oldest first."""
        return [m for m in self.messages(channel) if "streaming" in m]

    def _api_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p.get("channel"))
        message = self._message(channel, p.get("ts"))
        channel.messages.remove(message)
        return {"channel": channel.id, "ts": message["ts"]}

    def _api_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), str(p.get("message_ts") or "")
        if not channel or not ts:
            raise _ApiError("message_not_found")
        return {
            "channel": channel,
            "permalink": f"https://standin.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _api_conversations_join(self, p: dict[str, Any]) -> dict[str, Any]:
        channel_id = p.get("channel")
        if not channel_id:
            raise _ApiError("channel_not_found")
        channel = self._channel(channel_id)
        if channel.private or channel_id.startswith("D"):
            raise _ApiError("method_not_supported_for_channel_type")
        channel.member = True
        return {"channel": {"id": channel.id, "name": channel.name, "is_member": True}}

    def _api_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        """A user's DM with the bot (one user only): `D` and the user id's rest, the same every time."""
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if not users:
            raise _ApiError("channel_not_found" if p.get("channel") else "users_list_not_supplied")
        if len(users) > 1:
            raise _ApiError("not_implemented_in_standin")
        (user_id,) = users
        if user_id == self.bot_user_id:
            raise _ApiError("cannot_dm_bot")
        if not re.fullmatch(r"[UW][0-9A-Z]+", user_id):
            raise _ApiError("user_not_found")
        if user_id in self._ims:
            return {"no_op": True, "already_open": True, "channel": {"id": self._ims[user_id]}}
        channel = self._channel("D" + user_id[1:])
        channel.member = True
        self._ims[user_id] = channel.id
        return {"channel": {"id": channel.id}}

    def _api_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p.get("channel"))
        top = [m for m in channel.messages if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]
        return _page(list(reversed(top)), p, "messages")

    def _api_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p.get("channel"))
        ts = p.get("ts")
        thread = [m for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            raise _ApiError("thread_not_found")
        return _page(thread, p, "messages")

    def _api_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = str(p.get("user") or "")
        user = self._users.get(user_id)
        if user is None:
            if not re.fullmatch(r"[UW][0-9A-Z]+", user_id):
                raise _ApiError("user_not_found")
            user = _user(user_id)
        return {"user": user}

    def _api_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            raise _ApiError("invalid_trigger_id")
        view = p.get("view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        view_id = "V" + secrets.token_hex(5).upper()
        stored = {**view, "id": view_id, "hash": secrets.token_hex(8), "team_id": self.team_id}
        self._views[view_id] = stored
        return {"view": stored}

    def _api_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view_id = p.get("view_id")
        if not view_id and p.get("external_id"):
            view_id = next(
                (k for k, v in self._views.items() if v.get("external_id") == p["external_id"]), None
            )
        if view_id not in self._views:
            raise _ApiError("not_found")
        old = self._views[view_id]
        if p.get("hash") and p["hash"] != old["hash"]:
            raise _ApiError("hash_conflict")
        stored = {**p["view"], "id": view_id, "hash": secrets.token_hex(8), "team_id": self.team_id}
        self._views[view_id] = stored
        return {"view": stored}

    def _api_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user_id")
        view = p.get("view")
        if not user_id or not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        if view.get("type") != "home":
            raise _ApiError("invalid_arguments", errors=["view type must be home"])
        stored = {**view, "id": "V" + secrets.token_hex(5).upper(), "team_id": self.team_id}
        self._home[user_id] = stored
        return {"view": stored}

    def _api_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        filename = p.get("filename")
        length = str(p.get("length") or "")
        if not filename or not length.isdigit():
            raise _ApiError("invalid_arguments")
        file_id = "F" + secrets.token_hex(5).upper()
        self._uploads[file_id] = UploadedFile(
            id=file_id, filename=filename, length=int(length), alt_txt=p.get("alt_txt")
        )
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        items = p.get("files")
        if not isinstance(items, list) or not items:
            raise _ApiError("invalid_arguments")
        channels = [c for c in str(p.get("channels") or p.get("channel_id") or "").split(",") if c]
        for channel_id in channels:
            self._postable(channel_id)
        done = []
        for item in items:
            upload = self._uploads.get(item.get("id"))
            if upload is None:
                raise _ApiError("file_not_found")
            if len(upload.data) != upload.length:
                raise _ApiError("file_upload_size_mismatch")
            upload.title = item.get("title") or upload.filename
            upload.channels = channels
            upload.initial_comment = p.get("initial_comment")
            upload.thread_ts = p.get("thread_ts")
            upload.completed = True
            info = self._file_object(
                upload.id, upload.filename, None, upload.length, user=self.bot_user_id, title=upload.title
            )
            info["channels"] = channels
            self._files[upload.id] = info
            self._file_data[upload.id] = upload.data
            done.append({"id": upload.id, "title": upload.title})
            for channel_id in channels:
                message: dict[str, Any] = {
                    "type": "message",
                    "subtype": "file_share" if not upload.thread_ts else "thread_broadcast",
                    "user": self.bot_user_id,
                    "bot_id": self.bot_id,
                    "text": upload.initial_comment or "",
                    "ts": self._ts(),
                    "files": [info],
                }
                if upload.thread_ts:
                    message["thread_ts"] = upload.thread_ts
                self._channel(channel_id).messages.append(message)
        return {"files": done}

    def _api_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        info = self._files.get(p.get("file") or "")
        if info is None:
            raise _ApiError("file_not_found")
        return {"file": info, "comments": [], "response_metadata": {"next_cursor": ""}}

    # ---------------------------------------------- the agent surface (assistant.threads.*)
    # Slack's app messages surface: suggested prompts and titles of assistant threads. Slack
    # answers `{"ok": true}`; a call without its channel or thread is refused as Slack refuses it.
    # What was set is read back with `calls("assistant.threads.setSuggestedPrompts")` and
    # `thread_titles()`.

    def thread_titles(self) -> dict[tuple[str, str], str]:
        """The latest title set on each (channel, thread ts) by assistant.threads.setTitle."""
        with self._lock:
            return {
                (c.params["channel_id"], c.params["thread_ts"]): c.params["title"]
                for c in self._calls
                if c.method == "assistant.threads.setTitle"
                and c.status == 200
                and (c.response or {}).get("ok")
            }

    def _api_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        prompts = p.get("prompts")
        if not p.get("channel_id"):
            raise _ApiError("channel_not_found")
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            raise _ApiError("invalid_arguments")
        if any(not isinstance(x, dict) or not x.get("title") or not x.get("message") for x in prompts):
            raise _ApiError("invalid_arguments")
        return {}

    def _api_assistant_threads_setTitle(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel_id"):
            raise _ApiError("channel_not_found")
        if not p.get("thread_ts") or not p.get("title"):
            raise _ApiError("invalid_arguments")
        return {}


def _streamed_text(p: dict[str, Any]) -> str:
    """The Markdown a streaming call carries: `markdown_text`, or its `markdown_text` chunks."""
    text = str(p.get("markdown_text") or "")
    for chunk in p.get("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text") or "")
    if len(text) > 12_000:
        raise _ApiError("msg_too_long")
    return text


def _user(user_id: str, *, name: str | None = None, real_name: str | None = None) -> dict[str, Any]:
    real = real_name or f"Person {user_id}"
    return {
        "id": user_id,
        "team_id": DEFAULT_TEAM_ID,
        "name": name or user_id.lower(),
        "real_name": real,
        "deleted": False,
        "is_bot": False,
        # Workspace roles, as users.info reports them; `add_user(..., is_admin=True)` makes an admin.
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "tz": "Europe/Paris",
        "profile": {"real_name": real, "display_name": name or "", "image_48": ""},
    }


def _page(items: list[dict[str, Any]], p: dict[str, Any], key: str) -> dict[str, Any]:
    limit = int(p.get("limit") or 100)
    start = int(p.get("cursor") or 0) if str(p.get("cursor") or "0").isdigit() else 0
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return {
        key: [dict(m) for m in chunk],
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


# A tiny convenience for callers that want to block until a predicate holds.
def eventually(predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.01)
