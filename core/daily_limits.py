"""Daily limits on Gemini calls, per user and per workspace, counted in the database.

Whoever starts work on someone's behalf (a Slack listener, a resumed bulk job) wraps it in
`acting_for(meter, actor)`, on the thread that does the work;
`GeminiClient.call` then calls `charge()` before each request it sends, which takes one unit from
the actor's counters for the day (UTC) or raises `UsageLimitReached` without calling Gemini. The
counting is done by the database in one atomic statement per counter (`Store.consume_usage`), so
the limits hold across threads, worker processes and hosts.

What counts: every request sent to Gemini for the actor: an answer, a title call, an embedding
request for texts the cache did not hold (texts served from the cache never reach the client,
so they never count). A per-minute 429 retried by the client is one request, charged once;
calls that only serve a counted one (uploading an image, polling its processing) are not
charged, but they are refused too once a limit is reached. Work with no actor (the command
line) is neither counted nor limited.

The actor lives in a context variable of the thread inside `acting_for`, so threads started for
the work have to carry the context over (`contextvars.copy_context().run`); the Gemini
embedder's pool does, the only one that calls Gemini for someone else's thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from core.errors import GembotError

if TYPE_CHECKING:
    # Only for the annotation: the store imports this module's Scope and UsageCount.
    from core.store import Store

Scope = Literal["user", "team"]


class UsageLimitReached(GembotError):
    """The user (or the whole workspace) has used every Gemini call the day allows."""

    def __init__(self, *, scope: Scope, limit: int) -> None:
        self.scope = scope
        self.limit = limit
        calls = "call" if limit == 1 else "calls"
        who = "you have used your" if scope == "user" else "this workspace has used its"
        super().__init__(f"{who} {limit} Gemini {calls} for today; the limit resets at midnight UTC")


@dataclass(frozen=True)
class UsageLimits:
    """Gemini calls allowed per user and per workspace (team) each day; None = no limit."""

    user_daily: int | None = None
    team_daily: int | None = None

    @property
    def active(self) -> bool:
        return self.user_daily is not None or self.team_daily is not None


@dataclass(frozen=True)
class Actor:
    """On whose behalf Gemini is called: a workspace key and a user id (None: only the
    workspace's limit applies, e.g. to an event without a user)."""

    team_id: str
    user_id: str | None = None


@dataclass(frozen=True)
class UsageCount:
    """Calls counted so far on one day: the user's and the whole workspace's."""

    user: int
    team: int


def utc_today() -> date:
    return datetime.now(UTC).date()


class Meter:
    """Charges Gemini calls to actors against `limits`, counting in `counter` (the store).

    With no limit configured it does nothing at all, not even a database write.
    """

    def __init__(self, counter: Store, limits: UsageLimits, *, today: Callable[[], date] = utc_today) -> None:
        self.counter = counter
        self.limits = limits
        self._today = today

    def charge(self, actor: Actor, n: int = 1) -> None:
        """Take `n` calls from the actor's counters for today, or raise UsageLimitReached
        (and take nothing) when either counter would go past its limit."""
        if not self.limits.active or n <= 0:
            return
        user_limit = self.limits.user_daily if actor.user_id else None
        refused = self.counter.consume_usage(
            actor.team_id,
            actor.user_id,
            self._today(),
            n,
            user_limit=user_limit,
            team_limit=self.limits.team_daily,
        )
        if refused is not None:
            raise self._reached(refused)

    def check(self, actor: Actor) -> None:
        """Raise UsageLimitReached when the actor has no call left today; takes nothing."""
        if not self.limits.active:
            return
        count = self.counter.usage(actor.team_id, actor.user_id, self._today())
        if actor.user_id and self.limits.user_daily is not None and count.user >= self.limits.user_daily:
            raise self._reached("user")
        if self.limits.team_daily is not None and count.team >= self.limits.team_daily:
            raise self._reached("team")

    def _reached(self, scope: Scope) -> UsageLimitReached:
        limit = self.limits.user_daily if scope == "user" else self.limits.team_daily
        assert limit is not None
        return UsageLimitReached(scope=scope, limit=limit)


_current: contextvars.ContextVar[tuple[Meter, Actor] | None] = contextvars.ContextVar(
    "gembot_usage_actor", default=None
)


@contextmanager
def acting_for(meter: Meter, actor: Actor) -> Iterator[None]:
    """Charge the Gemini calls made inside the block (in this context) to `actor`."""
    token = _current.set((meter, actor))
    try:
        yield
    finally:
        _current.reset(token)


def current_actor() -> Actor | None:
    """The actor Gemini calls are charged to right now, if any."""
    found = _current.get()
    return found[1] if found is not None else None


def charge(n: int = 1) -> None:
    """Charge `n` calls to the current actor (nothing when there is none); see `Meter.charge`."""
    found = _current.get()
    if found is not None:
        meter, actor = found
        meter.charge(actor, n)


def check() -> None:
    """Raise UsageLimitReached when the current actor has no call left; see `Meter.check`."""
    found = _current.get()
    if found is not None:
        meter, actor = found
        meter.check(actor)
