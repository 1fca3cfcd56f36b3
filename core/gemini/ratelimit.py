"""A thread-safe requests-per-window limiter, so a big job paces itself under a quota.

It admits at most `limit` requests in any sliding window of `per` seconds: the rule a
per-minute quota enforces. Unlike a token bucket (which lets nearly 2×limit through in one
window) or even spacing (which wastes the burst a quota allows), it admits what the quota admits.

The server counts a request when it arrives, which we cannot see: only that it happened between
our sending it and the answer coming back, and network delays vary. So a request holds its slot
while in flight and for `per` seconds after its answer, never earlier. That can never overrun the
server's window, at the cost of one request's duration per window (a few percent at 60 s).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class RateLimiter:
    """At most `limit` requests in any `per` seconds, across every thread that shares it."""

    def __init__(
        self,
        limit: int,
        *,
        per: float = 60.0,
        margin: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or per <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per > 0")
        self.limit = limit
        self.per = per
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._in_flight = 0
        self._finished: collections.deque[float] = collections.deque()  # answer times, oldest first
        self._paused_until = 0.0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot around one request: waits for room, yields the seconds waited, frees it after."""
        waited = self._acquire()
        try:
            yield waited
        finally:
            with self._changed:
                self._in_flight -= 1
                self._finished.append(self._clock())
                self._changed.notify_all()

    def _acquire(self) -> float:
        waited = 0.0
        while True:
            with self._changed:
                now = self._clock()
                window = self.per + self.margin
                while self._finished and self._finished[0] <= now - window:
                    self._finished.popleft()
                if now < self._paused_until:
                    wait: float | None = self._paused_until - now
                elif self._in_flight + len(self._finished) < self.limit:
                    self._in_flight += 1
                    return waited
                elif self._finished:
                    wait = self._finished[0] + window - now
                else:
                    wait = None  # every slot is in flight: the first answer starts the clock
                if wait is None:
                    started = self._clock()
                    self._changed.wait()
                    waited += self._clock() - started
                    continue
            # Sleep outside the lock; whoever wakes first re-checks and takes the free slot.
            self._sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the server said so with a 429's retryDelay)."""
        with self._changed:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
