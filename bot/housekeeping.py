"""Rows the database would otherwise keep for ever, pruned now and then by every serving process.

- Daily usage counters (`usage_counters`): the limits are per UTC day, so only today's rows are
  ever read. The counters of the last USAGE_RETENTION days stay, for whoever looks at the table;
  older days are deleted (`Store.prune_usage`).
- Slack's OAuth install states (`slack_oauth_states`): slack_sdk's state store deletes a state
  when an install uses it, but one issued for an install nobody finished stays after it expires
  (`bot.oauth.STATE_EXPIRATION`, 10 minutes). Expired states are deleted here. The table is
  slack_sdk's, written on the store's engine and never by `Store`, so it is pruned beside it, by
  the table's declaration in `core.store.models` (tests keep it equal to slack_sdk's own).

`Housekeeping` is a global Bolt middleware, wired in with `app.use(Housekeeping(deps.store))`. A
request that finds an hour gone by since this process last pruned starts a round on a thread of
its own and goes on at once: pruning never holds up an answer. Each part of a round that fails (the
database away, say) logs one line, and the next round, an hour later, tries again. Several
processes pruning at once is harmless: deleting what another just deleted deletes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from bot.sweeps import PRUNE_EVERY
from core.errors import GembotError
from core.store import Store
from core.store.db import unavailable
from core.store.models import slack_oauth_states

log = logging.getLogger(__name__)

# Daily usage counters are kept this long (today's included), then pruned.
USAGE_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Pruned:
    """What one round deleted: usage counter rows and OAuth states (None: that part failed)."""

    usage_counters: int | None
    oauth_states: int | None


def prune_oauth_states(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete the OAuth install states that expired before `now` (default: now, timezone-aware);
    returns how many went. Such a state can no longer be used: slack_sdk accepts a state only
    while its `expire_at` is ahead."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("prune_oauth_states needs a timezone-aware datetime")
    # slack_sdk stores `expire_at` as naive UTC (`normalize_datetime_for_db`), and so compares.
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        result = conn.execute(delete(slack_oauth_states).where(slack_oauth_states.c.expire_at < naive_utc))
    return int(result.rowcount or 0)


class Housekeeping(Middleware):
    """Starts a pruning round (`run`) at most once every `every` seconds, from whichever request
    comes first, on a thread of its own; the request is never held up by it."""

    def __init__(self, store: Store, *, every: float = PRUNE_EVERY) -> None:
        self.store = store
        self.every = every
        self._next_round = 0.0
        self._lock = threading.Lock()
        #: The thread of the latest round, if one was started.
        self.thread: threading.Thread | None = None

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        try:
            self.now_and_then()
        except Exception as exc:  # no thread to be had, say: the request goes on all the same
            log.warning("could not start pruning old rows: %s", _one_line(exc))
        return next()

    def now_and_then(self) -> bool:
        """Start a round on its own thread unless one was started less than `every` seconds ago;
        True when one was started."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_round:
                return False
            self._next_round = now + self.every
            thread = threading.Thread(target=self.run, name="gembot-housekeeping", daemon=True)
            self.thread = thread
        thread.start()
        return True

    def run(self) -> Pruned:
        """One round, here and now: old usage counters, then expired OAuth states, each apart (a
        part that fails logs one line and leaves the other to run)."""
        today = datetime.now(UTC).date()
        before = today - USAGE_RETENTION + timedelta(days=1)
        counters = self._part(
            f"usage counters of days before {before.isoformat()}", lambda: self.store.prune_usage(before)
        )
        states = self._part("expired OAuth install states", lambda: prune_oauth_states(self.store.engine))
        return Pruned(usage_counters=counters, oauth_states=states)

    def _part(self, what: str, prune: Callable[[], int]) -> int | None:
        try:
            removed = prune()
        except Exception as exc:
            log.warning("could not prune %s: %s", what, _one_line(exc, self.store.engine))
            return None
        if removed:
            log.info("pruned %d %s", removed, what)
        return removed


def _one_line(exc: BaseException, engine: Engine | None = None) -> str:
    """`exc` in one line, a database URL's password masked."""
    if isinstance(exc, SQLAlchemyError) and engine is not None:
        return str(unavailable(engine, exc))
    if isinstance(exc, GembotError):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
