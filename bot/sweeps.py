"""The shape every background round of a serving process shares: a daemon thread that sweeps at
once and then every `interval` seconds until stopped, and never dies of a failed round.

`bot.lifecycle.JobResumer` (bulk jobs), `bot.slack_retries.RequestResumer` (requests in flight),
`bot.housekeeping.Housekeeping` (old rows, all pruning included) and `bot.retune.Retuner` (label
sets to tune again) are the four; each says what one round does in `round()`.
"""

from __future__ import annotations

import abc
import logging
import threading

from core.errors import GembotError

log = logging.getLogger(__name__)

# Old rows are pruned this often (seconds) by each process (`bot.housekeeping`).
PRUNE_EVERY = 3600.0


def every_third_of(lease_seconds: float) -> float:
    """How often a process renews leases of `lease_seconds`: three chances before one lapses."""
    return max(0.2, lease_seconds / 3)


class Sweeper(abc.ABC):
    """Calls `round()` on a thread of its own every `interval` seconds (see the module doc)."""

    #: The thread's name, and the words for a failed round in the log ("… jobs to resume").
    name: str = "gembot-sweeper"
    looking_for: str = "work"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def round(self) -> int:
        """One round; returns how much work it took on."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop sweeping, waiting up to `timeout` seconds for the round under way, if any, to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, timeout))

    def sweep(self) -> int:
        """One round, its failure logged (a database away for a while is expected) rather than raised."""
        try:
            return self.round()
        except GembotError as exc:
            log.warning("could not look for %s: %s", self.looking_for, exc)
        except Exception:
            log.exception("unexpected failure while looking for %s", self.looking_for)
        return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            self._stop.wait(self.interval)
