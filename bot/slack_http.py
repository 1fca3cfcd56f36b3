"""Bolt's WSGI adapter, behind the checks a request must pass before Bolt reads it, and with a request
Slack would never send answered 4xx instead of 500.

Before Bolt. Bolt's adapter reads the whole body its Content-Length announces, and `BoltRequest`
decodes and parses it as it is built, all before Bolt's middleware checks the signature: an
unsigned 60 MB POST cost the worker several times 60 MB before its 401. Here:

- a body longer than GEMBOT_MAX_BODY_BYTES is answered 413, from its Content-Length, unread; one
  without a Content-Length (chunked, which gunicorn de-chunks) is read one byte past the bound at
  most, and answered 413 if it had more. A client that stops sending its body for
  GEMBOT_READ_TIMEOUT seconds (the socket's timeout, `bot.http_worker`) is answered 408.
- the body's bytes, as they arrived, must carry Slack's signature (`X-Slack-Signature`, the
  HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret, `X-Slack-Request-Timestamp`
  within five minutes), checked with slack_sdk's `SignatureVerifier`. Without it the request is
  answered 401 with one log line, and nothing parses its body. Bolt checks the signature again, as
  it always does. (An `ssl_check` ping, which Bolt answers 200 before its check, is answered 200
  here too, without being parsed.)

After. Bolt decodes the body (UTF-8, then JSON, or a form whose `payload` is JSON) and reads its
workspace, user and channel ids; its middleware and listener matchers then read `event`, `view`
and `actions` without checking their type. Each raises on what Slack never sends: bytes that are
not UTF-8, truncated JSON, JSON that is not an object, a string where an object belongs
(`"event": "hi"`), empty `actions`. Left alone, each is a 500 with a traceback in the log, and an
Events API delivery that failed with a 5xx is sent again. A slash command without its user,
channel or `response_url` would run with nowhere to answer. All of these are answered 400 with one
log line, and reach no listener.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

# What Bolt's parsing raises on a body it cannot read (UnicodeDecodeError and JSONDecodeError are
# ValueErrors; RecursionError is JSON nested thousands deep).
UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)
# What every slash command from Slack carries.
COMMAND_FIELDS = ("team_id", "user_id", "channel_id", "response_url")
# Where the body read here travels in the environ, from `__call__` to `dispatch`.
BODY_KEY = "gembot.body"
# How much of a body is asked of the server at once.
READ_SIZE = 65_536
# The longest body an `ssl_check` ping has (`ssl_check=1&token=…`).
SSL_CHECK_BYTES = 256


def _refuse(status: int, error: str) -> BoltResponse:
    return BoltResponse(
        status=status,
        body=json.dumps({"ok": False, "error": error}),
        headers={"content-type": "application/json; charset=utf-8"},
    )


def _answer(start_response: StartResponse, response: BoltResponse) -> Iterable[bytes]:
    """`response` sent as Bolt's adapter sends its own."""
    wsgi = WsgiHttpResponse(status=response.status, headers=response.headers, body=response.body)
    start_response(wsgi.status, wsgi.get_headers())
    return wsgi.get_body()


def read_body(environ: WSGIEnvironment, *, limit: int) -> bytes | BoltResponse:
    """The request's body, or the answer refusing it: 413 over `limit` bytes, decided from the
    Content-Length before reading when there is one; 400 for a Content-Length that is not a
    number; 408 when the body stops arriving. Without a Content-Length the body is read to its
    end only where the server ends `wsgi.input` there (`wsgi.input_terminated`, as gunicorn does
    for a chunked body); elsewhere reading it could wait forever, and it is taken as empty, as
    PEP 3333 has it."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            log.info("refused a request whose Content-Length is not a number")
            return _refuse(400, "bad_request")
        # Over 18 digits is over any bound, whatever the digits (and int() refuses thousands).
        length = int(declared) if len(declared) <= 18 else limit + 1
        if length > limit:
            log.info("refused a request of %d bytes, over GEMBOT_MAX_BODY_BYTES (%d)", length, limit)
            return _refuse(413, "payload_too_large")
        wanted = length
    elif environ.get("wsgi.input_terminated"):
        wanted = limit + 1
    else:
        return b""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    body = bytearray()
    try:
        while len(body) < wanted:
            piece = stream.read(min(wanted - len(body), READ_SIZE))
            if not piece:
                break
            body += piece
    except OSError as exc:  # the socket's read timeout, or a client that went away
        log.info("refused a request whose body stopped arriving (%s)", exc)
        return _refuse(408, "request_timeout")
    if len(body) > limit:
        log.info("refused a request of more than GEMBOT_MAX_BODY_BYTES (%d) bytes", limit)
        return _refuse(413, "payload_too_large")
    return bytes(body)


class BytesSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier, signing the body's bytes as they arrived: its own decodes them as UTF-8
    first, and raises on bytes that are not (which a holder of the secret can sign all the same)."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        raw = body.encode() if isinstance(body, str) else body
        base = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def signed(self, body: bytes, environ: Mapping[str, Any]) -> bool:
        """Whether `body` carries a valid signature in the headers of `environ`."""
        try:
            return self.is_valid(
                body,
                environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
                environ.get("HTTP_X_SLACK_SIGNATURE"),
            )
        # A timestamp that is not a number, or one too large to compare with the clock; a
        # signature that is not ASCII.
        except (ValueError, OverflowError, TypeError, UnicodeError):
            return False


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


def _ssl_check(body: bytes) -> bool:
    return len(body) <= SSL_CHECK_BYTES and b"ssl_check=1" in body.split(b"&")


class SlackHandler(SlackRequestHandler):
    """`SlackRequestHandler` that bounds a request's body and checks its signature before Bolt reads
    it, and refuses a request Bolt cannot read (see the module doc).

    `signing_secret` is None for an app that does not verify requests (`build_app(...,
    verify_requests=False)`): then only the body's size is checked here.
    """

    def __init__(self, app: App, *, path: str, max_body_bytes: int, signing_secret: str | None) -> None:
        super().__init__(app, path=path)
        self.max_body_bytes = max_body_bytes
        self.verifier = BytesSignatureVerifier(signing_secret) if signing_secret else None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = read_body(environ, limit=self.max_body_bytes)
        if isinstance(body, BoltResponse):
            return _answer(start_response, body)
        if environ.get("REQUEST_METHOD") != "POST":
            body = b""  # Bolt's OAuth pages (GET) read the query string and cookies, never a body
        # What Bolt itself reads of the body (its OAuth pages do) comes from here, not the socket.
        buffered = {
            **environ,
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            BODY_KEY: body,
        }
        return super().__call__(buffered, start_response)

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        raw: bytes = request.environ[BODY_KEY]
        if self.verifier is not None and not self.verifier.signed(raw, request.environ):
            if _ssl_check(raw):
                return BoltResponse(status=200, body="")
            log.info("refused a request without a valid Slack signature")
            return _refuse(401, "invalid_request")
        try:
            bolt_request = BoltRequest(
                body=raw.decode(), query=request.query_string, headers=request.get_headers()
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
        return self.app.dispatch(bolt_request)
