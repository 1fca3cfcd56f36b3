"""SIGTERM to `gembot serve --http` (a real gunicorn in a subprocess, with the stand-ins): the work
in flight finishes and answers, a bulk job is recorded where it stopped and the next server finishes
it, and the process exits 0 within GEMBOT_GRACEFUL_TIMEOUT.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.store import ExampleInput, Store
from tests.support.gemini import GeminiStandIn
from tests.support.servers import GembotProcess, server_env
from tests.support.slack_standin import SlackStandIn

GRACEFUL = 10

Start = Callable[..., GembotProcess]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    # Settings and Store log through the root logger of this process: leave it as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def servers(tmp_path: Path, slack_standin: SlackStandIn, gemini_standin: GeminiStandIn) -> Iterator[Start]:
    """Start `gembot serve --http` (one worker) on the test's SQLite file: `servers(**extra_env)`."""
    started: list[GembotProcess] = []

    def start(**extra: str) -> GembotProcess:
        env = server_env(
            slack_standin,
            gemini_standin,
            f"sqlite:///{tmp_path / 'gembot.db'}",
            extra={"GEMBOT_GRACEFUL_TIMEOUT": str(GRACEFUL), **extra},
        )
        server = GembotProcess(env, log_dir=tmp_path, workers=1, threads=4)
        started.append(server)
        return server.start().wait_healthy()

    yield start
    for server in started:
        server.stop()


def terminate(server: GembotProcess) -> tuple[int, float]:
    """SIGTERM, as a supervisor sends it: the exit code and how long the server took to exit."""
    started = time.monotonic()
    code = server.stop(timeout=GRACEFUL + 10)
    return code, time.monotonic() - started


def wait_for(condition: Callable[[], Any], *, timeout: float = 20.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_an_answer_in_flight_is_delivered_before_the_worker_exits(
    servers: Start, slack_standin: SlackStandIn, gemini_standin: GeminiStandIn
) -> None:
    server = servers()
    gemini_standin.latency(2.0, on="generate")
    reply = server.sender.command(
        "/ask", "Still there?", response_url=slack_standin.response_url(), team_id=slack_standin.team_id
    )
    assert reply.status == 200 and reply.elapsed < 3
    wait_for(lambda: gemini_standin.requests("generate"), what="the question to reach Gemini")

    code, elapsed = terminate(server)
    log = server.log()
    assert code == 0, log
    assert 1.0 < elapsed < GRACEFUL, log  # it waited for the answer, and no longer than allowed
    (stopped,) = slack_standin.calls("chat.stopStream")  # already there: no waiting after the exit
    (answer,) = slack_standin.stream_messages(stopped.params["channel"])
    assert answer["text"] == "echo: Still there?" and not answer["streaming"]
    assert "1 listener(s) and job(s) in flight" in log


def embedded_texts(gemini: GeminiStandIn) -> Counter[str]:
    texts: Counter[str] = Counter()
    for r in gemini.requests("embed"):
        for request in (r.json or {}).get("requests") or [r.json or {}]:
            for part in (request.get("content") or {}).get("parts") or []:
                texts[part.get("text", "")] += 1
    return texts


def test_a_bulk_job_stopped_by_sigterm_is_finished_by_the_next_server(
    servers: Start, slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gembot.db'}"
    store = Store.open(url)
    store.add_examples(
        slack_standin.team_id,
        "default",
        [
            ExampleInput("billing", "my card was charged twice"),
            ExampleInput("billing", "refund my payment please"),
            ExampleInput("shipping", "my parcel has not arrived"),
            ExampleInput("shipping", "where is my delivery parcel"),
        ],
    )
    env = {"GEMBOT_EMBEDDER": "gemini", "GEMBOT_EMBEDDING_DIM": "768"}
    server = servers(**env)
    gemini_standin.latency(0.4, on="embed")  # a batch of 100 rows takes a moment
    rows = [f"ticket number {n} about my {'card' if n % 2 else 'parcel'}" for n in range(600)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("text",), *((t,) for t in rows)])
    file = slack_standin.add_file(out.getvalue().encode(), "big.csv", "text/csv")
    event = {
        "type": "message",
        "subtype": "file_share",
        "user": "U0HUMAN",
        "text": "classify",
        "ts": "1700009000.000100",
        "channel": "D0HUMAN",
        "channel_type": "im",
        "files": [file],
    }
    reply = server.sender.event(event, team_id=slack_standin.team_id, bot_user_id=slack_standin.bot_user_id)
    assert reply.status == 200
    slack_standin.wait_for("chat.update", timeout=30)  # the first 100 rows are done

    code, elapsed = terminate(server)
    log = server.log()
    assert code == 0 and elapsed < GRACEFUL, log
    (job,) = store.jobs.find()
    assert job.state == "queued" and 100 <= job.rows_done < 600, log  # recorded, not lost
    assert any("Paused at" in str(u.params["text"]) for u in slack_standin.calls("chat.update"))

    servers(**env)  # the next start takes it over
    wait_for(lambda: len(slack_standin.uploads()) == 2, timeout=60, what="the result")
    (table, _chart) = slack_standin.uploads()
    assert table.thread_ts == event["ts"]
    assert [r["text"] for r in csv.DictReader(io.StringIO(table.text))] == rows
    counts = embedded_texts(gemini_standin)
    assert all(counts[t] == 1 for t in rows), [t for t in rows if counts[t] != 1][:5]
    wait_for(lambda: store.jobs.find()[0].state == "done", what="the job to be marked done")
    store.close()
