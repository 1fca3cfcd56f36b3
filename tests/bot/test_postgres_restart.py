"""PostgreSQL stopped and started under load: `gembot serve --http` (two gunicorn workers) keeps
acknowledging every `/classify` within Slack's 3 seconds, answers each exactly once (the label, or
one line saying the database could not be used and to try again), and once PostgreSQL is back its
connection pools reconnect and every request is classified again, no worker dying and no
traceback in the log.

The shared PostgreSQL serves every other test, so this one runs its own (`tests/support/pg_cluster.py`) and
stops it for real (`pg_ctl stop -m fast`): connections are cut and the port refuses new ones until
it starts again. `tests/core/store/test_db_reconnect.py` covers the store's side of it in detail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from handlers.replies import DATABASE_TROUBLE
from tests.support import load_driver
from tests.support.gemini import GeminiStandIn
from tests.support.paced_load import Outcome, PacedLoad, expected_label
from tests.support.pg_cluster import PrivateCluster
from tests.support.servers import GembotProcess, server_env
from tests.support.slack_standin import SlackStandIn

# Slack's rule: a request not acknowledged within 3 seconds counts as failed.
ACK_LIMIT = 3.0
# Seconds of traffic before the stop, while PostgreSQL is down, and after it is back.
BEFORE, DOWN, AFTER = 1.5, 2.5, 2.5
# A request every PACE seconds, at most IN_FLIGHT unacknowledged at once.
PACE, IN_FLIGHT = 0.1, 8
# What a user is shown when the database fails under their request.
DATABASE_REPLY = f":warning: {DATABASE_TROUBLE}"


def classified(outcome: Outcome) -> bool:
    """Whether its one answer is the label its text should get (`classify.summary`)."""
    return len(outcome.replies) == 1 and f": {expected_label(outcome.n)} (" in outcome.replies[0]


def test_requests_survive_a_postgres_restart(
    private_postgres: PrivateCluster,
    slack_standin: SlackStandIn,
    gemini_standin: GeminiStandIn,
    tmp_path: Path,
) -> None:
    database_url = private_postgres.create_database("gembot")
    load_driver.seed(database_url)
    gemini_standin.latency(0.2, on="embed")
    env = server_env(slack_standin, gemini_standin, database_url, extra={"GEMBOT_EMBEDDER": "gemini"})
    with GembotProcess(env, log_dir=tmp_path, workers=2, threads=8) as server:
        workers = server.worker_pids()
        load = PacedLoad(server.events_url, slack_standin, pace=PACE, in_flight=IN_FLIGHT).start()
        try:
            time.sleep(BEFORE)
            stopping = time.monotonic()
            private_postgres.stop()
            stopped = time.monotonic()
            time.sleep(DOWN)
            starting = time.monotonic()
            private_postgres.start()
            started = time.monotonic()
            time.sleep(AFTER)
        finally:
            load.stop()
        outcomes = load.outcomes(wait=90)
        health = server.get("/healthz")
        alive = server.worker_pids()
    log = server.log()
    times = Times(stopping, stopped, starting, started)
    context = f"{summary(outcomes, times)}\nserver log (end):\n{log[-4000:]}"

    phases = {name: [o for o in outcomes if times.phase(o) == name] for name in ("before", "down", "after")}
    assert all(phases.values()), context

    problems = [p for o in outcomes if (p := problem(o))]
    assert problems == [], "\n".join(problems[:10]) + "\n" + context
    # The outage reached the users (or the test tested nothing), and the pools came back from it.
    assert any(o.replies == [DATABASE_REPLY] for o in phases["down"]), context
    not_classified = [o.n for o in phases["after"] if not classified(o)]
    assert not_classified == [], f"sent after the restart but not classified: {not_classified}\n{context}"

    assert health[0] == 200, health
    assert alive == workers, f"workers {workers} before, {alive} after:\n{log[-4000:]}"
    assert "Traceback" not in log, log[-6000:]


def problem(o: Outcome) -> str | None:
    """What is wrong with one request's outcome, whenever it was sent (None: nothing)."""
    if o.status != 200:
        return f"request {o.n} was acknowledged {o.status}: {o.ack_body[:200]!r}"
    if o.ack_seconds >= ACK_LIMIT:
        return f"request {o.n} was acknowledged after {o.ack_seconds:.2f} s"
    if o.ack_body:
        return f"request {o.n} was acknowledged with a message: {o.ack_body[:200]!r}"
    if shape := o.shape_problem():
        return shape
    if not (classified(o) or o.replies == [DATABASE_REPLY]):
        return f"request {o.n} ({expected_label(o.n)}) was answered {o.replies}"
    return None


@dataclass(frozen=True)
class Times:
    """When PostgreSQL began to stop, was stopped, began to start and was accepting connections."""

    stopping: float
    stopped: float
    starting: float
    started: float

    def phase(self, o: Outcome) -> str:
        """before / down / after the outage, or `switching` while pg_ctl was at work."""
        if o.sent_at < self.stopping:
            return "before"
        if self.stopped <= o.sent_at < self.starting:
            return "down"
        return "after" if o.sent_at >= self.started else "switching"


def summary(outcomes: list[Outcome], times: Times) -> str:
    """One line a request, for failure messages: phase, ack, what it got."""
    return "\n".join(
        f"{o.n:3d} {times.phase(o):9s} ack {o.status} in {o.ack_seconds:.2f} s, "
        f"{o.posts} post(s), replies {[r[:80] for r in o.replies]}"
        for o in outcomes
    )
