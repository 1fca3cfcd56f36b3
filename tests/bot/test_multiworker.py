"""Scale-out: two `gembot serve --http` processes on their own ports (two hosts behind a load balancer,
as far as Gembot can tell) on one PostgreSQL database, with the Slack and Gemini stand-ins.

One consistent view: a label-set change made through one server is used by the other at its next
request, and one event delivered to both is processed once. A gunicorn worker killed with SIGKILL
is replaced by its master while the other worker serves, and the requests it had taken are run
again by the others once their leases lapse; requests no Slack would send are refused 4xx by the
real server too, without harming a worker.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from core.store import Store
from tests.conftest import PostgresServer
from tests.support.gemini import GeminiStandIn
from tests.support.servers import GembotProcess, server_env
from tests.support.slack_standin import SlackStandIn, eventually


@dataclass
class Hosts:
    """Server A (two workers) and server B (one), the stand-ins they talk to, and their database."""

    a: GembotProcess
    b: GembotProcess
    slack: SlackStandIn
    gemini: GeminiStandIn
    database_url: str


@pytest.fixture(scope="module")
def hosts(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    url = postgres_server.create_database()
    logs = tmp_path_factory.mktemp("hosts")
    with SlackStandIn() as slack, GeminiStandIn() as gemini:
        # Migrated here, once: each server would migrate at start, and two at once would race.
        Store.open(url, migrate=True).close()
        # A short lease: a dead worker's requests are run again by another within seconds.
        env = server_env(slack, gemini, url, extra={"GEMBOT_EMBEDDER": "gemini", "GEMBOT_JOB_LEASE": "2"})
        a = GembotProcess(env, log_dir=logs, workers=2).start()
        b = GembotProcess(env, log_dir=logs, workers=1).start()
        try:
            a.wait_healthy()
            b.wait_healthy()
            yield Hosts(a, b, slack, gemini, url)
        finally:
            a.terminate()
            b.terminate()
            a.stop()
            b.stop()
    postgres_server.drop_database(url)


def command(hosts: Hosts, server: GembotProcess, name: str, text: str, *, channel: str) -> str:
    """Run a slash command through `server`; returns its answer: what the ack said, else the
    channel's last message once updated, else what went to the response_url."""
    url = hosts.slack.response_url()
    before = len([c for c in hosts.slack.calls("chat.update") if c.params.get("channel") == channel])
    reply = server.sender.command(name, text, channel_id=channel, response_url=url)
    assert reply.status == 200, reply
    if reply.body:
        return str(json.loads(reply.body)["text"])

    def arrived() -> bool:
        updated = [c for c in hosts.slack.calls("chat.update") if c.params.get("channel") == channel]
        return len(updated) > before or bool(hosts.slack.response_posts(url))

    eventually(arrived, timeout=15, what=f"the answer to {name} {text}")
    posts = hosts.slack.response_posts(url)
    return str(posts[-1]["text"] if posts else hosts.slack.messages(channel)[-1]["text"])


def test_a_label_set_change_through_one_server_is_used_by_the_other_at_its_next_request(
    hosts: Hosts,
) -> None:
    a, b = hosts.a, hosts.b
    for example in (
        "billing: I was charged twice on my invoice",
        "billing: the payment on my card failed",
        "shipping: where is my package delivery",
        "shipping: the parcel delivery is late",
    ):
        assert "Added example" in command(hosts, a, "/label", f"add {example}", channel="C0MWA")
    answer = command(hosts, b, "/classify", "charged twice on my invoice", channel="C0MWB")
    assert ": billing (" in answer, answer
    # B now holds a model trained on the set's current version; A changes the set.
    for example in ("refund: I want my money back", "refund: give me a refund of my money"):
        assert "Added example" in command(hosts, a, "/label", f"add {example}", channel="C0MWA")
    answer = command(hosts, b, "/classify", "I want my money back now", channel="C0MWB")
    assert ": refund (" in answer, answer
    listing = command(hosts, b, "/label", "sets", channel="C0MWB")
    assert listing.startswith("1 label set")


def test_one_event_delivered_to_both_servers_is_processed_once(hosts: Hosts) -> None:
    ts = "1700003000.000100"
    event = {
        "type": "message",
        "channel": "D0MWDUP",
        "channel_type": "im",
        "user": "U0HUMAN",
        "text": "hello from two hosts",
        "ts": ts,
        "event_ts": ts,
    }
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def deliver(server: GembotProcess, retry: int) -> None:
        barrier.wait()
        options = {"retry_num": retry} if retry else {}
        reply = server.sender.event(event, event_id="Ev0MWDUP", options=options)
        statuses.append(reply.status)

    threads = [threading.Thread(target=deliver, args=(s, n)) for n, s in enumerate((hosts.a, hosts.b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    eventually(lambda: len(hosts.slack.messages("D0MWDUP")) >= 1, timeout=15, what="the answer")
    # A late redelivery, to each server, is dropped too.
    for server in (hosts.a, hosts.b):
        assert server.sender.event(event, event_id="Ev0MWDUP", options={"retry_num": 3}).status == 200
    time.sleep(1.0)  # a second answer would have arrived by now
    (answer,) = hosts.slack.messages("D0MWDUP")
    assert answer["text"] == "echo: hello from two hosts"
    asked = [r for r in hosts.gemini.requests("generate") if b"hello from two hosts" in r.body]
    assert len(asked) == 1


def test_a_worker_killed_mid_request_is_replaced_and_its_requests_are_answered(hosts: Hosts) -> None:
    a, slack = hosts.a, hosts.slack
    before = a.worker_pids()
    assert len(before) == 2
    hosts.gemini.latency(0.6, on="generate")  # answers are in flight when the worker dies
    try:
        with ThreadPoolExecutor(4) as pool:  # at once, so that both workers take some
            replies = list(
                pool.map(
                    lambda n: a.sender.command("/ask", f"question {n}", channel_id=f"C0KILL{n}"), range(4)
                )
            )
        assert [r.status for r in replies] == [200] * 4
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        eventually(
            lambda: len(a.worker_pids()) == 2 and victim not in a.worker_pids(),
            timeout=15,
            what="gunicorn to replace the killed worker",
        )
        assert a.process is not None and a.process.poll() is None  # the master lives on
        for n in range(4):
            assert a.get("/healthz")[0] == 200
            assert command(hosts, a, "/ask", f"after {n}", channel=f"C0AFTER{n}") == f"echo: after {n}"

        # What the killed worker had taken is run again once its lease (2 s) lapses, by any
        # worker of either host: every question is answered, exactly once.
        def answers(n: int) -> list[str]:
            # Not the question's own message (/ask streams its answer into its thread).
            return [
                m["text"]
                for m in slack.messages(f"C0KILL{n}")
                if m["text"] != "Asking Gemini…" and not m["text"].endswith("(the answer is in the thread)")
            ]

        try:
            eventually(lambda: all(answers(n) for n in range(4)), timeout=30, what="every question answered")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{a.log()[-3000:]}\n{hosts.b.log()[-2000:]}") from None
        time.sleep(1.0)  # a second answer would have arrived by now
    finally:
        hosts.gemini.latency(0)
    shown = {n: [m["text"] for m in slack.messages(f"C0KILL{n}")] for n in range(4)}
    for n, texts in shown.items():
        # The killed worker's own "working" message stays behind; the answer is posted anew.
        assert answers(n) == [f"echo: question {n}"], shown
        assert texts.count("Asking Gemini…") <= 1, shown
    asked = [r for r in hosts.gemini.requests("generate") if b"question" in r.body]
    assert len(asked) <= 4 + 2  # the killed worker's questions are asked again, nothing more


def test_requests_no_slack_would_send_are_refused_by_the_real_server(hosts: Hosts) -> None:
    b = hosts.b
    workers = b.worker_pids()
    sender = b.sender
    now = time.time()
    sent = [
        sender.post(b"command=/ask&text=\xff\xfe", content_type="application/x-www-form-urlencoded"),
        sender.post(b'{"type": "event_callback", "event": {', content_type="application/json"),
        sender.post(b'{"type": "event_callback", "event": {', content_type="application/json", signed=False),
        sender.post(b"[1, 2, 3]", content_type="application/json"),
        sender.post(b"[" * 100_000, content_type="application/json"),
        sender.command("/ask", "late", options={"timestamp": int(now) - 301}),
        sender.command("/ask", "early", options={"timestamp": math.ceil(now) + 301}),
        sender.post(
            b"command=/ask",
            content_type="application/x-www-form-urlencoded",
            headers={"X-Slack-Request-Timestamp": "soon"},
        ),
    ]
    assert [400 <= r.status < 500 for r in sent] == [True] * len(sent), [(r.status, r.body) for r in sent]
    assert b.get("/healthz")[0] == 200
    assert b.worker_pids() == workers
    assert "Traceback" not in b.log(), b.log()[-3000:]
