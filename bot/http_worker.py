"""gunicorn's threaded worker, with a deadline on every read from a client and every write to it.

gunicorn's gthread worker reads a request's line, headers and body in one of its threads, on a
blocking socket without a timeout (it only waits a few seconds for a new connection's first
bytes, and bounds the drain of a body the app left unread): a client that sends part of a
request and then nothing holds that thread for as long as it keeps the connection open, and
`--threads` such clients stop the worker answering anyone. Here each connection's socket gives
every read and write GEMBOT_READ_TIMEOUT seconds. A client that lets them pass loses its
connection and the thread serves the next one; it is logged at debug level, as gunicorn logs a
client that went away, not with the traceback gunicorn logs for a socket error. A stall inside the
body, under the app's read, is answered 408 first (`bot.slack_http`).

The timeout is on the plain TCP socket: gunicorn's own TLS (`certfile`), which Gembot does not
configure, would wrap it in a socket without one.
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker


class ClientStalled(NoMoreData, TimeoutError):
    """A client let GEMBOT_READ_TIMEOUT seconds pass without sending a byte (or taking one).

    A `TimeoutError`, which is what it is (and what gunicorn's drain of an unread body expects of
    a read that stalls), and gunicorn's `NoMoreData`, which its worker treats as a client that has
    gone: the connection is closed with a debug line, where a bare socket timeout would be logged
    with a traceback.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(None)
        self.timeout = timeout

    def __str__(self) -> str:
        return f"the client sent nothing for {self.timeout:g} s"


class TimedSocket(socket.socket):
    """A client connection whose blocking reads and writes each last at most `read_timeout` seconds.

    gunicorn switches a connection between non-blocking (while it waits in the worker's poller,
    kept alive) and blocking (in a worker thread) with `setblocking`: blocking, here, is with the
    timeout. gunicorn's own `settimeout` calls (its bounded drain of an unread body, its
    graceful close) are left as they are.
    """

    __slots__ = ("read_timeout",)
    read_timeout: float

    @classmethod
    def adopt(cls, sock: socket.socket, read_timeout: float) -> TimedSocket:
        """`sock`'s connection, moved into a `TimedSocket` (`sock` is left detached)."""
        timed = cls(fileno=sock.detach())
        timed.read_timeout = read_timeout
        timed.setblocking(True)
        return timed

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout)
        else:
            super().setblocking(False)

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        try:
            return super().recv(bufsize, flags)
        except TimeoutError:
            raise ClientStalled(self.read_timeout) from None

    def send(self, data: Any, flags: int = 0, /) -> int:
        try:
            return super().send(data, flags)
        except TimeoutError:
            raise ClientStalled(self.read_timeout) from None

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        try:
            super().sendall(data, flags)
        except TimeoutError:
            raise ClientStalled(self.read_timeout) from None


class TimeoutThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, whose connections time out (see the module doc); `worker_class()`
    makes one with GEMBOT_READ_TIMEOUT's value."""

    read_timeout: ClassVar[float] = 10.0

    def handle(self, conn: Any) -> Any:
        # Once per connection, in the thread that first serves it, before anything reads from it:
        # a connection is in no poller while a thread has it.
        if not isinstance(conn.sock, TimedSocket):
            conn.sock = TimedSocket.adopt(conn.sock, self.read_timeout)
        return super().handle(conn)


def worker_class(read_timeout: float) -> type[TimeoutThreadWorker]:
    """The worker class for gunicorn's `worker_class` setting, giving each read `read_timeout` seconds."""
    return type("TimeoutThreadWorker", (TimeoutThreadWorker,), {"read_timeout": read_timeout})
