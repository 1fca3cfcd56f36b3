"""What a request may cost before it is known to come from Slack, on the real server (`gembot serve
--http`, gunicorn): a body over GEMBOT_MAX_BODY_BYTES is refused 413 without being read into memory,
an unsigned one 401 before anything parses it, and a client that stops sending loses its connection
after GEMBOT_READ_TIMEOUT seconds instead of holding a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import slack_fixtures
from tests.support.gemini import GeminiStandIn
from tests.support.servers import GembotProcess, rss_kib, server_env
from tests.support.slack_fixtures import BotServer
from tests.support.slack_standin import SlackStandIn

JSON = "application/json"
HUGE = 60 * 1024 * 1024
MIB_IN_KIB = 1024


def huge_json(size: int) -> Iterator[bytes]:
    """`size` bytes of one JSON object, in 1 MiB pieces: what Bolt would decode and parse whole."""
    head, tail = b'{"type": "event_callback", "event": {"type": "message", "text": "', b'"}}'
    block = b"x" * (1 << 20)
    yield head
    left = size - len(head) - len(tail)
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece
    yield tail


def post_raw(port: int, *, size: int, chunked: bool, timeout: float = 60.0) -> int | None:
    """POST `size` bytes of JSON to /slack/events, unsigned, with a Content-Length or chunked.

    The answer is read while the body is still being sent (a server that refuses early closes the
    connection under the sender, which is then reset): its status, or None if none arrived.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON}\r\n{framing}\r\n\r\n"
    ).encode()
    answer = bytearray()

    def read(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while b"\r\n" not in answer:
                piece = sock.recv(4096)
                if not piece:
                    return
                answer.extend(piece)

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        reader = threading.Thread(target=read, args=(sock,))
        reader.start()
        with contextlib.suppress(OSError):  # the server may close before the whole body is sent
            sock.sendall(head)
            for piece in huge_json(size):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        reader.join(timeout)
    if not answer.startswith(b"HTTP/"):
        return None
    return int(answer.split()[1])


class PeakRss:
    """The most resident memory (KiB) a process held while this was running, sampled every 2 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def url_verification(server: GembotProcess) -> tuple[int, object]:
    body = json.dumps({"type": "url_verification", "challenge": "still-here", "token": "x"})
    reply = server.sender.post(body, content_type=JSON)
    return reply.status, reply.json()


@pytest.fixture
def gunicorn_env(
    slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, tmp_path: Path
) -> dict[str, str]:
    return server_env(
        slack_standin,
        gemini_standin,
        f"sqlite:///{tmp_path / 'gembot.db'}",
        extra={"GEMBOT_READ_TIMEOUT": "1"},
    )


def test_huge_unsigned_bodies_are_refused_413_without_growing_the_worker(
    gunicorn_env: dict[str, str], tmp_path: Path
) -> None:
    with GembotProcess(gunicorn_env, log_dir=tmp_path, workers=1, threads=4) as server:
        (worker,) = server.worker_pids()
        # Whatever a first request loads is loaded before the measure.
        assert url_verification(server) == (200, {"challenge": "still-here"})
        assert post_raw(server.port, size=10_000, chunked=False) == 401
        before = rss_kib(worker)
        with PeakRss(worker) as rss, ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(
                    lambda chunked: post_raw(server.port, size=HUGE, chunked=chunked), [False] * 3 + [True]
                )
            )
        after = rss_kib(worker)
        print(f"worker RSS: before {before} KiB, peak {rss.peak} KiB, after {after} KiB")
        # Each is refused from its headers (or its first MiB, chunked) and its connection closed
        # under the sender, who may or may not have read the answer by then: the server's log says.
        assert set(statuses) <= {413, None} and 413 in statuses, statuses
        assert server.log().count("bot.slack_http: refused a request of ") == 4, server.log()[-3000:]
        assert rss.peak - before < 20 * MIB_IN_KIB, (before, rss.peak, after)
        assert server.worker_pids() == [worker]
        assert url_verification(server) == (200, {"challenge": "still-here"})
        assert post_raw(server.port, size=10_000, chunked=True) == 401
    assert "Traceback" not in server.log(), server.log()[-3000:]


def stalled(port: int, data: bytes) -> socket.socket:
    """A connection that sent `data` and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(data)
    return sock


def closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """How long until the server closed `sock`, and what it answered before."""
    started, answer = time.monotonic(), bytearray()
    with contextlib.suppress(ConnectionResetError):
        while piece := sock.recv(4096):
            answer.extend(piece)
    sock.close()
    return time.monotonic() - started, bytes(answer)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty", id="headers"),
        pytest.param(
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"type": "event_',
            id="body",
        ),
    ],
)
def test_a_client_that_stops_sending_loses_its_connection_and_frees_the_thread(
    gunicorn_env: dict[str, str], tmp_path: Path, sent: bytes
) -> None:
    with GembotProcess(gunicorn_env, log_dir=tmp_path, workers=1, threads=1) as server:
        sock = stalled(server.port, sent)
        # The only thread is held by the stalled client until the read timeout (1 s) frees it.
        with ThreadPoolExecutor(1) as pool:
            health = pool.submit(server.get, "/healthz", timeout=10)
            waited, answer = closed_after(sock)
            assert health.result()[0] == 200
        assert waited < 5, waited
        # A stall in the body is answered (408) before the connection closes; one in the headers
        # has nothing to answer.
        if b"\r\n\r\n" in sent:
            assert answer.startswith(b"HTTP/1.1 408"), answer
        else:
            assert answer == b"", answer
        assert url_verification(server) == (200, {"challenge": "still-here"})
        for _ in range(3):
            closed_after(stalled(server.port, sent))
        assert server.get("/healthz")[0] == 200
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_an_unsigned_body_under_the_limit_is_401_and_runs_nothing(bot_server: BotServer) -> None:
    event = {"type": "message", "channel": "D0HUMAN", "channel_type": "im", "user": "U0HUMAN", "text": "hi"}
    reply = bot_server.send_event(event, options={"signed": False})
    assert (reply.status, reply.json()) == (401, {"ok": False, "error": "invalid_request"})
    reply = bot_server.send_command("/ask", "hello?", options={"forge": True})
    assert (reply.status, reply.json()) == (401, {"ok": False, "error": "invalid_request"})
    bot_server.settle()
    assert bot_server.slack.calls() == []
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []
    # Signed, the same event is answered.
    assert bot_server.send_event({**event, "ts": "1700000000.000100"}).status == 200
    bot_server.slack.wait_for("chat.postMessage")


def test_a_body_over_the_limit_is_413_over_http(make_bot_server: slack_fixtures.MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_BODY_BYTES": "65536"})
    sender = server.sender
    assert sender.post(b"x" * 65_537, content_type=JSON).status == 413
    signed_but_big = json.dumps({"type": "url_verification", "challenge": "c" * 70_000, "token": "x"})
    assert sender.post(signed_but_big, content_type=JSON).status == 413
    fits = json.dumps({"type": "url_verification", "challenge": "c" * 60_000, "token": "x"})
    assert sender.post(fits, content_type=JSON).status == 200
    server.settle()
    assert server.slack.calls() == []
