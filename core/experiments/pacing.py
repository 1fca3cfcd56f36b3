"""Pacing an experiment's requests: a per-minute limit for each model, and workers shared fairly.

Gemini's quotas are per model, so each model has its own sliding-window limiter
(`core.gemini.ratelimit`), shared by every run of a process. A request waiting for its model's
limiter holds a worker thread, so the requests are handed out to whichever model has the fewest
in flight (`ModelQueues`), never in the order they were planned.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from core.gemini.ratelimit import RateLimiter


class _ForAModel(Protocol):
    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=_ForAModel)


class ModelLimiters:
    """One sliding-window limiter per model, `rpm` requests per `window` seconds (none when 0).

    Shared by every run of a process, so two experiments on one model share its quota.
    """

    def __init__(self, rpm: int, *, window: float = 60.0) -> None:
        self.rpm = rpm
        self.window = window
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def __call__(self, model: str) -> RateLimiter | None:
        if self.rpm <= 0:
            return None
        with self._lock:
            if model not in self._limiters:
                self._limiters[model] = RateLimiter(self.rpm, per=self.window)
            return self._limiters[model]


class ModelQueues(Generic[R]):
    """The requests left (anything with a `model`), one queue per model, handed out to the model
    with the fewest in flight.

    A worker waiting for its model's limiter holds a thread: taking requests in row order would
    let one model's spent window hold every thread while the other model's quota went unused.
    """

    def __init__(self, todo: Sequence[R]) -> None:
        self._queues: dict[str, collections.deque[R]] = {}
        for request in todo:
            self._queues.setdefault(request.model, collections.deque()).append(request)
        self._busy = collections.Counter[str]()

    def next(self) -> R | None:
        ready = [model for model, queue in self._queues.items() if queue]
        if not ready:
            return None
        model = min(ready, key=lambda m: self._busy[m])
        self._busy[model] += 1
        return self._queues[model].popleft()

    def done(self, model: str) -> None:
        self._busy[model] -= 1
