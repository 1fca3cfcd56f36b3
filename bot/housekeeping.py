"""Rows the database would otherwise keep for ever, pruned by a background round of every serving process.

- Daily usage counters (`usage_counters`): the limits are per UTC day, so only today's rows are
  ever read. The counters of the last USAGE_RETENTION days stay, for whoever looks at the table;
  older days are deleted (`Store.prune_usage`).
- Slack's OAuth install states (`slack_oauth_states`): slack_sdk's state store deletes a state
  when an install uses it, but one issued for an install nobody finished stays after it expires
  (`bot.oauth.STATE_EXPIRATION`, 10 minutes). Expired states are deleted here. The table is
  slack_sdk's, written on the store's engine and never by `Store`, so it is pruned beside it, by
  the table's declaration in `core.store.schema` (tests keep it equal to slack_sdk's own).
- Conversation turns in threads, and the images they brought, older than
  GEMBOT_CONVERSATION_RETENTION_DAYS (`Store.prune_conversations`).
- Finished bulk jobs, their input and rows, JOB_RETENTION after they ended (`JobStore.prune`).
- Request claims (`bot.slack_retries`), GEMBOT_EVENT_RETENTION_HOURS after they were taken: by then
  Slack resends nothing (`DeliveryStore.prune`).

`Housekeeping` is the one place all of it happens: a `bot.sweeps.Sweeper` that `bot.lifecycle`
starts with the other background rounds of a serving process (HTTP workers and Socket Mode
alike), a round at once and then every PRUNE_EVERY seconds, on its own thread: no request ever
waits for it. Each part of a round that fails (the database away, say) logs one line and leaves
the others to run; the next round tries again. Several processes pruning at once is harmless:
deleting what another just deleted deletes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from bot.sweeps import PRUNE_EVERY, Sweeper
from core.errors import GembotError
from core.settings import Settings
from core.store import Store
from core.store.db import unavailable
from core.store.schema import slack_oauth_states

log = logging.getLogger(__name__)

# Daily usage counters are kept this long (today's included), then pruned.
USAGE_RETENTION = timedelta(days=7)
# Finished jobs (their input and rows) are kept this long, then pruned.
JOB_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept before a round prunes it (the defaults: the settings')."""

    conversations: timedelta = timedelta(days=Settings().conversation_retention_days)
    requests: timedelta = timedelta(hours=Settings().event_retention_hours)
    jobs: timedelta = JOB_RETENTION

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(
            conversations=timedelta(days=settings.conversation_retention_days),
            requests=timedelta(hours=settings.event_retention_hours),
        )


@dataclass(frozen=True)
class Pruned:
    """What one round deleted, part by part (None: that part failed)."""

    usage_counters: int | None = 0
    oauth_states: int | None = 0
    conversation_turns: int | None = 0
    jobs: int | None = 0
    requests: int | None = 0

    @property
    def total(self) -> int:
        parts = (self.usage_counters, self.oauth_states, self.conversation_turns, self.jobs, self.requests)
        return sum(n for n in parts if n)


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


class Housekeeping(Sweeper):
    """Prunes old rows (see the module doc): a round when started, then one every `interval` seconds."""

    name = "gembot-housekeeping"
    looking_for = "old rows to prune"

    def __init__(
        self, store: Store, *, retention: Retention | None = None, interval: float = PRUNE_EVERY
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.retention = retention or Retention()

    def round(self) -> int:
        """One round (`run`); returns how many rows went in all."""
        return self.run().total

    def run(self, *, now: datetime | None = None) -> Pruned:
        """One round, here and now (`now`: timezone-aware, default the current time): each part
        apart, a part that fails logging one line and leaving the others to run."""
        moment = now if now is not None else datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("Housekeeping.run needs a timezone-aware datetime")
        store, kept = self.store, self.retention
        before = moment.astimezone(UTC).date() - USAGE_RETENTION + timedelta(days=1)
        return Pruned(
            usage_counters=self._part(
                f"usage counters of days before {before.isoformat()}", lambda: store.prune_usage(before)
            ),
            oauth_states=self._part(
                "expired OAuth install states", lambda: prune_oauth_states(store.engine, now=moment)
            ),
            conversation_turns=self._part(
                f"conversation turns older than {_span(kept.conversations)}",
                lambda: store.prune_conversations(moment - kept.conversations),
            ),
            jobs=self._part(
                f"finished jobs older than {_span(kept.jobs)}", lambda: store.jobs.prune(moment - kept.jobs)
            ),
            requests=self._part(
                f"request ids older than {_span(kept.requests)}",
                lambda: store.deliveries.prune(moment - kept.requests),
            ),
        )

    def _part(self, what: str, prune: Callable[[], int]) -> int | None:
        try:
            removed = prune()
        except Exception as exc:
            log.warning("could not prune %s: %s", what, _one_line(exc, self.store.engine))
            return None
        if removed:
            log.info("pruned %d %s", removed, what)
        return removed


def _span(span: timedelta) -> str:
    """`span` in words: "30 days", "24 hours"."""
    hours = span.total_seconds() / 3600
    if hours >= 48:
        return f"{hours / 24:g} days"
    return f"{hours:g} hours"


def _one_line(exc: BaseException, engine: Engine | None = None) -> str:
    """`exc` in one line, a database URL's password masked."""
    if isinstance(exc, SQLAlchemyError) and engine is not None:
        return str(unavailable(engine, exc))
    if isinstance(exc, GembotError):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
