"""Requests in flight (`bot.slack_retries`): claimed before any listener runs, finished when the last
listener ends, kept alive by their process's lease while the work runs, and run again by another
process when theirs stops renewing it. Through the running HTTP app, with the stand-ins behind it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import text

from bot.slack_retries import DeliveryTracker
from core.errors import DatabaseUnavailable
from core.store import Store
from core.store.deliveries import Claim, DeliveryStore
from tests.support.slack_fixtures import MakeBotServer
from tests.support.slack_harness import command_body
from tests.support.slack_standin import SlackStandIn, eventually

# Short leases so that a test sees them lapse; the resumer looks every third of one.
FAST = {"GEMBOT_JOB_LEASE": "1"}


def claims(store: Store) -> dict[str, tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, finished_at, attempts, payload FROM slack_events")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def answers(slack: SlackStandIn, channel: str) -> list[str]:
    # Not the question's own message (/ask streams its answer into that message's thread).
    return [
        m["text"]
        for m in slack.messages(channel)
        if m["text"] != "Asking Gemini…" and not m["text"].endswith("(the answer is in the thread)")
    ]


def test_a_request_is_finished_when_its_answer_is_sent(make_bot_server: MakeBotServer) -> None:
    bot = make_bot_server()
    reply = bot.send_command("/ask", "finish me", trigger_id="1.2.finish")
    assert reply.status == 200
    eventually(lambda: answers(bot.slack, "C0GENERAL") == ["echo: finish me"], timeout=10, what="the answer")
    bot.settle()
    assert bot.deps is not None
    finished_at, attempts, payload = claims(bot.deps.store)["1.2.finish"]
    # The stored request (with its response_url) is gone; the id stays, against redeliveries.
    assert finished_at is not None and attempts == 1 and payload is None


def test_the_stored_request_leaves_out_the_verification_token(make_bot_server: MakeBotServer) -> None:
    bot = make_bot_server()
    assert bot.gemini is not None
    bot.gemini.latency(1.5, on="generate")
    bot.send_command("/ask", "hold on", trigger_id="1.2.token")
    assert bot.deps is not None
    _, _, payload = claims(bot.deps.store)["1.2.token"]
    assert payload is not None and '"hold on"' in payload
    assert "deprecated-verification-token" not in payload and '"token"' not in payload
    bot.settle()


def test_a_request_left_by_a_dead_process_is_run_again_once(make_bot_server: MakeBotServer) -> None:
    bot = make_bot_server(env=FAST)
    assert bot.deps is not None
    # What a process killed after its ack leaves behind: the claim, the request, a lapsed lease.
    form = command_body(
        "/ask",
        "are you still there?",
        channel_id="C0ORPHAN",
        team_id=bot.team,
        response_url=bot.slack.response_url(),
    )
    body = dict(parse_qsl(form))
    body.pop("token")
    key = body["trigger_id"]
    store = bot.deps.store
    assert store.deliveries.claim(key, team_id=body["team_id"], payload=body, lease=timedelta(0)) is Claim.NEW

    eventually(lambda: answers(bot.slack, "C0ORPHAN") != [], timeout=10, what="the request run again")
    bot.settle()
    time.sleep(1.5)  # a lease and more: a second run would have started by now
    assert answers(bot.slack, "C0ORPHAN") == ["echo: are you still there?"]
    finished_at, attempts, payload = claims(store)[key]
    assert finished_at is not None and attempts == 2 and payload is None


def test_a_long_request_keeps_its_lease_and_is_not_run_twice(make_bot_server: MakeBotServer) -> None:
    # Two servers on one database: the second would take over the first's request if the first
    # stopped renewing its lease (1 s) during the 3 s Gemini takes.
    first = make_bot_server(env=FAST)
    assert first.deps is not None and first.gemini is not None
    url = first.settings.database_url
    second = make_bot_server(database_url=url, env=FAST)
    first.gemini.latency(3.0, on="generate")
    assert first.send_command("/ask", "slow one", channel_id="C0SLOW").status == 200
    eventually(lambda: answers(first.slack, "C0SLOW") != [], timeout=15, what="the answer")
    first.settle()
    second.settle()
    time.sleep(1.5)
    assert answers(first.slack, "C0SLOW") == ["echo: slow one"]
    asked = [r for r in first.gemini.requests("generate") if b"slow one" in r.body]
    assert len(asked) == 1


def test_a_redelivered_event_is_dropped_while_its_first_delivery_runs(make_bot_server: MakeBotServer) -> None:
    bot = make_bot_server()
    assert bot.gemini is not None
    bot.gemini.latency(1.0, on="generate")
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "D0REDELIVER",
        "user": "U0PERSON",
        "text": "hi",
    }
    event["ts"] = event["event_ts"] = "1700000000.000100"
    assert bot.send_event(event, event_id="EvRedeliver").status == 200
    assert bot.send_event(event, event_id="EvRedeliver", options={"retry_num": 1}).status == 200
    eventually(lambda: bot.slack.messages("D0REDELIVER") != [], timeout=10, what="the answer")
    bot.settle()
    time.sleep(0.5)
    assert [m["text"] for m in bot.slack.messages("D0REDELIVER")] == ["echo: hi"]


class FinishFailsOnce:
    """The store's deliveries, with the database away for the first `finish`."""

    def __init__(self, inner: DeliveryStore) -> None:
        self.inner = inner
        self.failed = False

    def finish(self, keys: Sequence[str]) -> None:
        if not self.failed:
            self.failed = True
            raise DatabaseUnavailable("the database is restarting")
        self.inner.finish(keys)

    def renew(self, keys: Sequence[str], lease: timedelta) -> None:
        self.inner.renew(keys, lease)


def test_a_finish_the_database_missed_is_recorded_at_the_next_renewal(store: Store) -> None:
    assert store.deliveries.claim("EvLate", team_id="T1", payload={"n": 1}, lease=timedelta(seconds=30))
    flaky = FinishFailsOnce(store.deliveries)
    tracker = DeliveryTracker(store, lease=timedelta(seconds=30))
    tracker.store = SimpleNamespace(deliveries=flaky)  # type: ignore[assignment]
    tracker.begin("EvLate").release()  # the work is done; recording it fails
    assert flaky.failed and claims(store)["EvLate"][0] is None

    tracker.renew()
    finished_at, _, payload = claims(store)["EvLate"]
    # Recorded long before the lease would lapse: no other process runs it a second time.
    assert finished_at is not None and payload is None
