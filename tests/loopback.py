"""What the Slack and Gemini stand-ins share: an HTTP server on 127.0.0.1 on a free port, served
from a background thread, that can be stopped cleanly with clients still connected.

A subclass says which server to make (`_make_server`); its handler does the protocol.
"""

from __future__ import annotations

import abc
import contextlib
import http.server
import socket
import threading
from typing import Any, Self


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on a free loopback port that knows its open connections.

    The SDKs keep connections alive between requests; `Loopback.stop` shuts those down so that a
    client waiting on one notices at once rather than at its timeout.
    """

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
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

    def __init__(self) -> None:
        # Set while stopping: wakes requests a stand-in holds back (latency, quotas).
        self._stopping = threading.Event()
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _make_server(self) -> LoopbackHTTPServer:
        """The server, bound and ready to serve this stand-in."""

    def start(self) -> Self:
        """Bind a free loopback port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = self._make_server()
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
