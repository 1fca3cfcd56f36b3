"""Random requests against the WSGI entry point (`bot.wsgi.GembotWSGI`, in process, with the real Bolt
app against the Slack stand-in): random bodies (bytes, JSON, forms, Slack-shaped envelopes, JSON
nested thousands deep, bodies over the bound) under random headers (content types, right and wrong
Content-Lengths, timestamps, signatures valid and not).

Whatever comes: never a 5xx; a request that is not validly signed is refused 401 (or 413 for its
size, 400 for a Content-Length that is no number) before Bolt sees it, so no middleware or listener
of the app runs for it; a validly signed one may get any 2xx-4xx.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt import App

from bot.slack_http import SSL_CHECK_BYTES
from handlers.deps import Deps
from tests.support.slack_fixtures import MakeBotServer
from tests.support.slack_harness import DEFAULT_SIGNING_SECRET, command_body, event_body, sign

LIMIT = 65_536  # GEMBOT_MAX_BODY_BYTES here: its smallest, so that bodies over it stay cheap

# -- bodies --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# Objects with the keys Bolt and the app route on, each holding anything.
slack_keys = st.sampled_from(
    ["type", "event", "view", "actions", "command", "team_id", "user_id", "channel_id", "response_url",
     "payload", "team", "user", "channel", "authorizations", "event_id", "challenge", "ssl_check"]
)  # fmt: skip
slackish = st.dictionaries(slack_keys, json_values | st.sampled_from(["event_callback", "block_actions"]))
forms = st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=6).map(urlencode)
nested = st.builds(
    lambda opener, depth: opener * depth, st.sampled_from(["[", '{"a":', '{"event":']), st.integers(1, 70_000)
)
bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(json.dumps),
    slackish.map(json.dumps),
    slackish.map(lambda p: urlencode({"payload": json.dumps(p)})),
    forms,
    nested,
    st.builds(lambda text: command_body("/ask", text), st.text(max_size=50)),
    st.builds(lambda event: json.dumps(event_body(event)), st.dictionaries(slack_keys, json_values)),
    st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: "x" * n),
).map(lambda body: body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)

# -- headers -------------------------------------------------------------------------------------

header_text = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=30)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "application/json; charset=utf-8",
     "text/plain", "multipart/form-data; boundary=x", ""]
) | header_text  # fmt: skip
lengths = st.sampled_from(["exact", "absent", "short", "long", "not a number", "negative", "enormous"])
timestamps = st.sampled_from(["now", "stale", "future", "just inside"]) | header_text
signatures = st.sampled_from(["valid", "wrong secret", "other body", "absent"]) | header_text


@dataclass
class Request:
    body: bytes
    content_type: str
    length: str
    terminated: bool
    timestamp: str
    signature: str


requests = st.builds(
    Request,
    body=bodies,
    content_type=content_types,
    length=lengths,
    terminated=st.booleans(),
    timestamp=timestamps,
    signature=signatures,
)


def stamp(kind: str, now: int) -> str:
    offsets = {"now": 0, "stale": -301, "future": 301, "just inside": -280}
    return str(now + offsets[kind]) if kind in offsets else kind


def environ_for(request: Request, *, now: int) -> tuple[dict[str, Any], bytes | None]:
    """The WSGI environ of `request`, and the bytes the app finds in it (None: a Content-Length
    that is no number)."""
    body, declared = request.body, None
    read: bytes | None = body
    if request.length == "exact":
        declared = str(len(body))
    elif request.length == "short":
        declared = str(max(len(body) - 1, 0))
        read = body[: max(len(body) - 1, 0)]
    elif request.length == "long":
        declared = str(len(body) + 7)
    elif request.length == "absent":
        read = body if request.terminated else b""
    elif request.length == "enormous":
        declared = "9" * 30
    else:
        declared = {"not a number": "12abc", "negative": "-5"}[request.length]
        read = None
    timestamp = stamp(request.timestamp, now)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": request.content_type,
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.input_terminated": request.terminated,
    }
    if declared is not None:
        environ["CONTENT_LENGTH"] = declared
    signature = {
        "valid": sign(DEFAULT_SIGNING_SECRET, timestamp, body),
        "wrong secret": sign("not-" + DEFAULT_SIGNING_SECRET, timestamp, body),
        "other body": sign(DEFAULT_SIGNING_SECRET, timestamp, body + b" "),
        "absent": None,
    }.get(request.signature, request.signature)
    if signature is not None:
        environ["HTTP_X_SLACK_SIGNATURE"] = signature
    return environ, read


def refusal(request: Request, read: bytes | None) -> int | None:
    """The status the app must refuse `request` with, or None when it is validly signed: signed with
    the secret, recently, over the very bytes the app reads, and within the bound."""
    if read is None:
        return 400
    if request.length == "enormous" or len(read) > LIMIT:
        return 413
    if request.length == "long" and len(request.body) + 7 > LIMIT:
        return 413
    fresh = request.timestamp in ("now", "just inside")
    if request.signature == "valid" and fresh and read == request.body:
        return None
    if len(read) <= SSL_CHECK_BYTES and b"ssl_check=1" in read.split(b"&"):
        return 200  # Slack's ssl_check ping, answered as Bolt answers it
    return 401


class Spy:
    """Counts the requests that reach the app's middleware (which every listener runs behind)."""

    def __init__(self) -> None:
        self.reached = 0
        self._lock = threading.Lock()

    def setup(self, app: App, deps: Deps) -> None:
        @app.middleware
        def count(next_: Any) -> Any:
            with self._lock:
                self.reached += 1
            return next_()


def call(wsgi: Any, environ: dict[str, Any]) -> tuple[int, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(status)
        return lambda data: None

    body = b"".join(wsgi(environ, start_response))
    return int(seen[0].split()[0]), body


def test_random_requests_get_no_5xx_and_none_unsigned_reaches_the_app(make_bot_server: MakeBotServer) -> None:
    spy = Spy()
    server = make_bot_server(setup=spy.setup, env={"GEMBOT_MAX_BODY_BYTES": str(LIMIT)})
    wsgi = server.wsgi
    refused = {
        400: {"ok": False, "error": "bad_request"},
        401: {"ok": False, "error": "invalid_request"},
        413: {"ok": False, "error": "payload_too_large"},
    }
    outcomes: dict[str, int] = {"signed": 0, "unsigned": 0}

    @settings(
        max_examples=1000,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests)
    def check(request: Request) -> None:
        environ, read = environ_for(request, now=int(time.time()))
        before = spy.reached
        status, answer = call(wsgi, environ)
        assert status < 500, (status, answer)
        expected = refusal(request, read)
        if expected is None:
            outcomes["signed"] += 1
            return
        outcomes["unsigned"] += 1
        assert spy.reached == before, "the app ran for a request not validly signed"
        if expected == 200:
            assert (status, answer) == (200, b"")
        else:
            assert (status, json.loads(answer)) == (expected, refused[expected]), answer

    check()
    # Both kinds were tried, in numbers.
    assert outcomes["signed"] >= 50 and outcomes["unsigned"] >= 500, outcomes
    assert spy.reached > 0
    server.settle()
