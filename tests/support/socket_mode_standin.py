"""A loopback stand-in for Slack's Socket Mode servers, for tests that drive the real slack_bolt
`SocketModeHandler` (slack_sdk's built-in Socket Mode client).

The protocol, as slack_sdk's client (`slack_sdk.socket_mode`) and Slack's documentation have it:

* The app calls `apps.connections.open` with its app-level token (`xapp-…`) and gets
  `{"ok": true, "url": "wss://…/link/?ticket=…"}`; a wrong token gets `invalid_auth`. The Web API
  stand-in answers that method for this server (`SlackStandIn.serve_socket_mode`), with a
  `ws://127.0.0.1:PORT/link/?ticket=…` URL: the built-in client speaks plain TCP to any port but
  443. A ticket opens one connection; an unknown or used ticket is refused in the handshake.
* On connect the server sends `{"type": "hello", "num_connections": …, "debug_info": {…},
  "connection_info": {"app_id": …}}`.
* It sends envelopes, `{"envelope_id", "type": "events_api" | "slash_commands" | "interactive",
  "payload": <what Slack would POST over HTTP, as JSON>, "accepts_response_payload", and for events
  "retry_attempt" / "retry_reason"}`, to the newest open connection, and expects an ack
  `{"envelope_id": …, "payload": {…}?}` within 3 seconds.
* `{"type": "disconnect", "reason": "refresh_requested" | "warning" | "link_disabled"}` tells the
  app to open a new connection (`apps.connections.open` again); once it has, the server closes the
  old one. WebSocket pings are answered with pongs (the `websockets` library does it).

Everything is recorded for tests: connections (`connections`, `wait_for_connections`), envelopes
sent (`envelopes`) and acks received, with their payload and how long they took (`acks`,
`wait_for_ack`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["Ack", "Envelope", "SocketConnection", "SocketModeStandIn"]

DEFAULT_APP_TOKEN = "xapp-1-A0GEMBOT-0000-standin-app-level-token"
DEFAULT_APP_ID = "A0GEMBOT"
#: Slack's deadline for an ack.
ACK_DEADLINE = 3.0


@dataclass
class SocketConnection:
    """One WebSocket connection the app opened with a ticket; `closed` is `time.monotonic()` or None."""

    number: int
    ticket: str
    opened: float
    closed: float | None = None
    disconnect_reason: str | None = None
    _socket: ServerConnection | None = field(default=None, repr=False)

    @property
    def open(self) -> bool:
        return self.closed is None


@dataclass
class Envelope:
    """An envelope as sent, on which connection (its `number`) and when (`time.monotonic()`)."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    message: dict[str, Any]
    connection: int
    sent: float


@dataclass
class Ack:
    """An ack as received: `payload` is None when the app sent none; `elapsed` is seconds since
    its envelope was sent (None for an ack of no envelope this server sent)."""

    envelope_id: str
    payload: dict[str, Any] | None
    message: dict[str, Any]
    connection: int
    received: float
    elapsed: float | None


class SocketModeStandIn:
    """Slack's Socket Mode endpoint on 127.0.0.1, a random port; see the module doc.

    Use it as a context manager (or `start()` / `stop()`), and hand it to the Web API stand-in with
    `SlackStandIn.serve_socket_mode(server)`, so that `apps.connections.open` with `app_token`
    returns this server's URL.
    """

    def __init__(self, *, app_token: str = DEFAULT_APP_TOKEN, app_id: str = DEFAULT_APP_ID) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._connections: list[SocketConnection] = []
        self._envelopes: list[Envelope] = []
        self._acks: list[Ack] = []
        self._others: list[dict[str, Any]] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SocketModeStandIn:
        self._server = serve(
            self._serve, "127.0.0.1", 0, process_request=self._check_ticket, compression=None
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="socket-mode-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SocketModeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the Socket Mode stand-in is not running"
        return int(self._server.socket.getsockname()[1])

    # ------------------------------------------------------------------ apps.connections.open

    def connections_open(self, token: str | None) -> dict[str, Any]:
        """What `apps.connections.open` answers a request with `token`: a URL with a new ticket."""
        if token is None:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if not secrets.compare_digest(token, self.app_token):
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        if not known:
            return connection.respond(401, "invalid ticket\n")
        return None

    # ------------------------------------------------------------------ one connection

    def _serve(self, socket: ServerConnection) -> None:
        query = parse_qs(urlsplit(socket.request.path if socket.request else "").query)
        with self._changed:
            opened = SocketConnection(
                number=len(self._connections) + 1,
                ticket=(query.get("ticket") or [""])[0],
                opened=time.monotonic(),
                _socket=socket,
            )
            self._connections.append(opened)
            live = sum(1 for c in self._connections if c.open)
            # Slack closes a connection it asked to refresh once the app has opened the new one.
            retiring = [c for c in self._connections if c.open and c.disconnect_reason and c is not opened]
            self._changed.notify_all()
        socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": live,
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        for old in retiring:
            if old._socket is not None:
                # Not on this thread: closing waits for the other end's close frame.
                threading.Thread(target=old._socket.close, args=(1000, "refreshed"), daemon=True).start()
        try:
            for raw in socket:
                self._received(opened, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                opened.closed = time.monotonic()
                self._changed.notify_all()

    def _received(self, connection: SocketConnection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = {"unparsed": raw if isinstance(raw, str) else raw.decode("utf-8", "replace")}
        now = time.monotonic()
        with self._changed:
            envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
            if envelope_id is None:
                self._others.append(message)
            else:
                sent = next((e for e in self._envelopes if e.envelope_id == envelope_id), None)
                payload = message.get("payload")
                self._acks.append(
                    Ack(
                        envelope_id=str(envelope_id),
                        payload=payload if isinstance(payload, dict) else None,
                        message=message,
                        connection=connection.number,
                        received=now,
                        elapsed=None if sent is None else now - sent.sent,
                    )
                )
            self._changed.notify_all()

    # ------------------------------------------------------------------ what Slack sends

    def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        envelope_id: str | None = None,
        timeout: float = 5.0,
    ) -> Envelope:
        """Send an envelope of `kind` ("events_api", "slash_commands", "interactive") around
        `payload` on the newest open connection not asked to refresh (waiting up to `timeout` for
        one). Events carry `retry_attempt` (0) and `retry_reason` ("") as Slack's do."""
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands" or payload.get("type") in (
                "view_submission",
                "block_suggestion",
            )
        message: dict[str, Any] = {
            "envelope_id": envelope_id or _envelope_id(),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            message["retry_attempt"] = retry_attempt or 0
            message["retry_reason"] = retry_reason or ""
        with self._changed:
            if not self._changed.wait_for(lambda: self._current() is not None, timeout):
                raise AssertionError(f"no open Socket Mode connection to send to after {timeout:g} s")
            connection = self._current()
            assert connection is not None and connection._socket is not None
            envelope = Envelope(
                envelope_id=message["envelope_id"],
                type=kind,
                payload=payload,
                message=message,
                connection=connection.number,
                sent=time.monotonic(),
            )
            self._envelopes.append(envelope)
            # Under the lock, so that an ack cannot arrive before its envelope is recorded.
            connection._socket.send(json.dumps(message))
        return envelope

    def disconnect(self, reason: str = "refresh_requested") -> SocketConnection:
        """Ask the app to move to a new connection, as Slack does before it closes one."""
        with self._changed:
            connection = self._current()
            if connection is None or connection._socket is None:
                raise AssertionError("no open Socket Mode connection to disconnect")
            connection.disconnect_reason = reason
            connection._socket.send(
                json.dumps(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
                )
            )
        return connection

    def _current(self) -> SocketConnection | None:
        live = [c for c in self._connections if c.open and c.disconnect_reason is None]
        return live[-1] if live else None

    # ------------------------------------------------------------------ reading back

    def connections(self) -> list[SocketConnection]:
        with self._lock:
            return list(self._connections)

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes)

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        with self._lock:
            return [a for a in self._acks if envelope_id is None or a.envelope_id == envelope_id]

    def other_messages(self) -> list[dict[str, Any]]:
        """What the app sent that was not an ack (nothing, from a well-behaved client)."""
        with self._lock:
            return list(self._others)

    def wait_for_connections(self, count: int = 1, *, timeout: float = 10.0) -> list[SocketConnection]:
        """Wait until `count` connections have been opened (whatever became of them since)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._connections) >= count, timeout):
                raise AssertionError(
                    f"{len(self._connections)} Socket Mode connection(s) after {timeout:g} s, wanted {count}"
                )
            return list(self._connections)

    def wait_for_ack(self, envelope: Envelope, *, timeout: float = ACK_DEADLINE + 2) -> Ack:
        """The (first) ack of `envelope`, waiting up to `timeout` seconds for it."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._ack_of(envelope.envelope_id) is not None, timeout):
                raise AssertionError(
                    f"no ack of envelope {envelope.envelope_id} ({envelope.type}) in {timeout:g} s"
                )
            found = self._ack_of(envelope.envelope_id)
            assert found is not None
            return found

    def _ack_of(self, envelope_id: str) -> Ack | None:
        return next((a for a in self._acks if a.envelope_id == envelope_id), None)


def _envelope_id() -> str:
    """An id shaped like Slack's (a UUID)."""
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
