"""A thread-safe requests-per-window limiter, so a big job paces itself under a quota.

It admits at most `limit` requests in any sliding window of `per` seconds: the rule a
per-minute quota enforces. Unlike a token bucket (which lets nearly 2×limit through in one
window) or even spacing (which wastes the burst a quota allows), this admits exactly what the
quota admits, so a long job finishes in about the time the quota allows with no 429s.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most `limit` `acquire()`s in any `per` seconds, across every thread that shares it."""

    def __init__(
        self,
        limit: int,
        *,
        per: float = 60.0,
        margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or per <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per > 0")
        self.limit = limit
        self.per = per
        # The server counts a request when it arrives, a little after we admit it, and that delay
        # varies; without a margin the (limit+1)th request can land inside the server's window.
        self.margin = per / 100 + 0.02 if margin is None else margin
        self._clock = clock
        self._sleep = sleep
        self._admitted: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more request fits in the window, count it, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._admitted and self._admitted[0] <= now - self.per - self.margin:
                    self._admitted.popleft()
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif len(self._admitted) < self.limit:
                    self._admitted.append(now)
                    return waited
                else:
                    wait = self._admitted[0] + self.per + self.margin - now
            # Sleep outside the lock; whoever wakes first re-checks and takes the free slot.
            self._sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the server said so with a 429's retryDelay)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
