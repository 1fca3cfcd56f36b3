"""What the Slack and Gemini stand-ins share: an HTTP server on 127.0.0.1 on a free port, served
from a background thread, that can be stopped cleanly with clients still connected, and a handler
that hands every request to the stand-in and writes back its `Answer`.

A subclass implements the protocol in `_handle` and says what its own bug looks like on the wire
(`_failure`).
"""

from __future__ import annotations

import abc
import contextlib
import http.server
import socket
import threading
from typing import Any, Protocol, Self


class Answer(Protocol):
    """What a stand-in answers a request with."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """Reads each request, asks the server's stand-in for the answer, writes it back."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every answer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        assert isinstance(self.server, LoopbackHTTPServer)
        standin = self.server.standin
        body = self._read_body()
        try:
            reply = standin._handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # the stand-in's own bug: a 500 the test will notice
            reply = standin._failure(exc)
        if reply is None:  # stopped while holding the request back
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            pieces = getattr(reply, "pieces", None)  # a paced stream (the Gemini stand-in's)
            if not pieces:
                self.wfile.write(reply.body)
            for index, piece in enumerate(pieces or []):
                if index and standin._stopping.wait(getattr(reply, "pause", 0.0)):
                    break
                self.wfile.write(piece)
                self.wfile.flush()
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on a free loopback port that knows its open connections.

    The SDKs keep connections alive between requests; `Loopback.stop` shuts those down so that a
    client waiting on one notices at once rather than at its timeout.
    """

    daemon_threads = True

    def __init__(self, standin: Loopback, handler: type[LoopbackHandler]) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is business as usual here, not a test failure.
        pass


class Loopback(abc.ABC):
    """Start, stop, `with`, `port` and `base_url` for a stand-in served by a `LoopbackHTTPServer`."""

    #: The handler class its server uses (a subclass may set headers such as `server_version`).
    handler: type[LoopbackHandler] = LoopbackHandler

    def __init__(self) -> None:
        # Set while stopping: wakes requests a stand-in holds back (latency, quotas).
        self._stopping = threading.Event()
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer | None:
        """The answer to one request; None when the stand-in stopped while holding it back."""

    @abc.abstractmethod
    def _failure(self, exc: Exception) -> Answer:
        """The 500 for a bug in the stand-in itself, in the protocol's own error shape."""

    def start(self) -> Self:
        """Bind a free loopback port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = LoopbackHTTPServer(self, self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake held requests, and drop open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with server.connections_lock:
            for connection in list(server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"
