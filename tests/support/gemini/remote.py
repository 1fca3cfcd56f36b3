"""The Gemini stand-in in a process of its own, for benchmarks: there it cannot take the GIL from
the client it measures, as the real API runs on Google's machines.

    with StandInManager() as manager:
        standin = manager.RemoteStandIn()
        base_url, api_key = standin.begin()

A multiprocessing proxy sees methods, not properties, so `begin` starts the stand-in and hands
back its address and key, and `statuses`/`arrivals` read its records as plain values.
"""

from __future__ import annotations

from multiprocessing.managers import BaseManager

from tests.support.gemini.standin import GeminiStandIn


class RemoteStandIn(GeminiStandIn):
    """The stand-in, with what a proxy needs to drive it."""

    def begin(self) -> tuple[str, str]:
        self.start()
        return self.base_url, self.api_key

    def statuses(self, kind: str | None = None) -> list[int]:
        return [r.status for r in self.requests(kind)]

    def arrivals(self, kind: str | None = None) -> list[float]:
        return [r.timestamp for r in self.requests(kind)]


class StandInManager(BaseManager):
    """Starts a process that serves `RemoteStandIn`s."""


StandInManager.register(
    "RemoteStandIn",
    RemoteStandIn,
    exposed=("begin", "statuses", "arrivals", "latency", "quota", "clear_requests", "stop"),
)
