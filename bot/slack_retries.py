"""Every request from Slack is worked on once, and not lost when the process working on it dies.

Slack resends an event it thinks went unanswered (same `event_id`, with `X-Slack-Retry-Num`), and
the resend may reach another worker, or this one after a restart. And once Gembot has answered a
request's 3 seconds, the real work (Gemini, the reply) runs afterwards in a lazy listener: were
the process killed then, Slack would resend nothing and the user would wait forever.

* `Deliveries`, a global middleware, claims each event (by `event_id`) and each interaction (by
  its `trigger_id`) in the database (`core.store.deliveries`) before any listener runs, with the
  request and a lease. A claim another process holds, or one already finished, means this delivery
  is acknowledged and dropped.
* `TrackedExecutor` counts the lazy listeners each request starts; when the last one ends, the
  claim is marked finished and its stored request dropped.
* `DeliveryTracker.renew` keeps the leases of the requests this process works on; the
  `bot.background.RequestResumer` round calls it, and runs again (through the app, as if the
  request had just arrived) any request whose process stopped renewing its lease. Old claims are
  pruned by `bot.background.Housekeeping`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from slack_bolt import App
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from core.errors import GembotError
from core.store import Store
from core.store.deliveries import Claim

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Set in `BoltRequest.context` of a request run again: it was claimed already. HTTP requests
# cannot set it, so it cannot be forged.
REPLAY = "gembot_replay_of"


def delivery_key(body: dict[str, Any]) -> str | None:
    """The id a request is claimed by: its `event_id`, or the `trigger_id` of an interaction."""
    if body.get("type") == "event_callback":
        event_id = body.get("event_id")
        return str(event_id) if event_id else None
    trigger_id = body.get("trigger_id")
    return str(trigger_id) if trigger_id else None


class Delivery:
    """One request this process works on: its request thread and each lazy listener hold it."""

    def __init__(self, key: str, tracker: DeliveryTracker) -> None:
        self.key = key
        self._tracker = tracker
        self._holds = 1
        self._lock = threading.Lock()

    def hold(self) -> None:
        with self._lock:
            self._holds += 1

    def release(self) -> None:
        with self._lock:
            self._holds -= 1
            done = self._holds == 0
        if done:
            self._tracker.finished(self)


_current: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("gembot_delivery", default=None)


class DeliveryTracker:
    """The requests this process is working on, and their claims in the database."""

    def __init__(self, store: Store, *, lease: timedelta) -> None:
        self.store = store
        self.lease = lease
        self._active: dict[str, Delivery] = {}
        self._unrecorded: set[str] = set()  # finished, but the database did not hear of it
        self._lock = threading.Lock()

    def begin(self, key: str) -> Delivery:
        delivery = Delivery(key, self)
        with self._lock:
            self._active[key] = delivery
        return delivery

    def finished(self, delivery: Delivery) -> None:
        with self._lock:
            if self._active.get(delivery.key) is delivery:
                del self._active[delivery.key]
        self._record([delivery.key])

    def _record(self, keys: list[str]) -> None:
        try:
            self.store.deliveries.finish(keys)
        except GembotError as exc:
            # Tried again at every renewal, well before the lease lapses and another process
            # would run the request a second time.
            log.warning("could not mark %d request(s) finished, will try again: %s", len(keys), exc)
            with self._lock:
                self._unrecorded.update(keys)

    @property
    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def renew(self) -> None:
        """Record the finishes that could not be recorded, and renew the leases of the rest."""
        with self._lock:
            unrecorded, self._unrecorded = sorted(self._unrecorded), set()
        if unrecorded:
            self._record(unrecorded)
        self.store.deliveries.renew(self.active, self.lease)


class Deliveries(Middleware):
    """Claims each request before its listeners run (see the module doc)."""

    def __init__(self, tracker: DeliveryTracker) -> None:
        self.tracker = tracker

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body = req.body
        key = delivery_key(body)
        if key is None:
            return next()
        if req.context.get(REPLAY) != key:
            try:
                team = str(body.get("team_id") or "")
                claim = self.tracker.store.deliveries.claim(
                    key, team_id=team, payload=_stored(body), lease=self.tracker.lease
                )
            except GembotError as exc:
                # Without the database a request is better answered (maybe twice) than dropped.
                log.warning("could not claim request %s, processing it anyway: %s", key, exc)
                return next()
            if claim is Claim.TAKEN:
                retry = req.headers.get("x-slack-retry-num", [""])[0]
                log.info("request %s already taken on: skipped%s", key, f" (retry {retry})" if retry else "")
                return BoltResponse(status=200, body="")
            if claim is Claim.RETAKEN:
                log.warning("request %s was left unfinished by a stopped process: running it again", key)
        # Bolt runs the listeners after its global middlewares, not inside `next()`: the request
        # is released when `TrackingApp.dispatch` returns, and the listeners it started hold it
        # through `TrackedExecutor`, which finds it in the request thread's context.
        _current.set(self.tracker.begin(key))
        return next()


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    # Slack's legacy verification token is a credential and the signature already did its job.
    return {k: v for k, v in body.items() if k != "token"}


class TrackingApp(App):
    """A Bolt app that releases each tracked request once its dispatch is over (see `Deliveries`)."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        # `Deliveries` sets the request's `Delivery` in this thread's context, where the listeners
        # started by this dispatch find it; nothing from an earlier request on the thread leaks in.
        token = _current.set(None)
        try:
            return super().dispatch(req)
        finally:
            delivery = _current.get()
            _current.reset(token)
            if delivery is not None:
                delivery.release()


class TrackedExecutor(Executor):
    """Runs listeners on `inner`, each holding the request that started it until it ends."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        delivery = _current.get()
        if delivery is None:
            return self.inner.submit(fn, *args, **kwargs)

        def run() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                delivery.release()

        delivery.hold()
        try:
            return self.inner.submit(run)
        except BaseException:
            delivery.release()
            raise

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)
