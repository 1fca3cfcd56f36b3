"""Each Events API delivery is processed once, however often Slack sends it.

Slack resends an event it thinks went unanswered (same `event_id`, with `X-Slack-Retry-Num`), and
the resend may reach another worker, or this one after a restart. This global middleware claims
the `event_id` in the database before any listener runs; a claim that was already made means the
event is acknowledged and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from core.errors import GembotError
from core.store import Store

log = logging.getLogger(__name__)

# Old claims are pruned at most this often (seconds) by each process.
PRUNE_EVERY = 3600.0


class EventDeduplication(Middleware):
    """Acknowledges and skips an `event_callback` whose `event_id` was already claimed."""

    def __init__(self, store: Store, *, retention_hours: float) -> None:
        self.store = store
        self.retention = timedelta(hours=retention_hours)
        self._next_prune = 0.0
        self._lock = threading.Lock()

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not event_id:
            return next()
        try:
            first = self.store.claim_event(str(body.get("team_id") or ""), str(event_id))
            self._prune_now_and_then()
        except GembotError as exc:
            # Without the database an event is better answered twice than dropped.
            log.warning("could not claim event %s, processing it anyway: %s", event_id, exc)
            return next()
        if not first:
            retry = req.headers.get("x-slack-retry-num", [""])[0]
            log.info("event %s already taken on: skipped%s", event_id, f" (retry {retry})" if retry else "")
            return BoltResponse(status=200, body="")
        return next()

    def _prune_now_and_then(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_prune:
                return
            self._next_prune = now + PRUNE_EVERY
        removed = self.store.prune_events(datetime.now(UTC) - self.retention)
        if removed:
            log.info("forgot %d delivered event ids older than %s", removed, self.retention)
