"""A CSV classification sent by DM outlives the process that started it.

Through the running HTTP app, on SQLite and PostgreSQL: the server is restarted (or its worker
dies) half-way through a 600-row file; the next server takes the stored job over, classifies only
the rows not yet done, and answers in the same thread, updating the same progress message, with
the result file uploaded once.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from core.embeddings.base import TaskType
from tests.handlers.test_bulk import DM, EXAMPLES, seed, send_csv, texts_of
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.slack_fixtures import BotServer, MakeBotServer

ROWS = 600


def row_text(n: int) -> str:
    return f"refund the charge on my card {n}" if n % 2 else f"my parcel delivery is late {n}"


def tickets(rows: int = ROWS) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [("id", "text"), *((str(n), row_text(n)) for n in range(rows))]
    )
    return out.getvalue()


class ProcessDied(BaseException):
    """Stands for a worker killed mid-batch: nothing catches it, nothing is tidied up."""


class InterruptibleEmbedder(BagOfWordsEmbedder):
    """The fake embedder, which can hold (until `release` is set) or die at the batch starting at a row."""

    def __init__(self, *, hold_at: int | None = None, die_at: int | None = None) -> None:
        super().__init__()
        self.hold_at = None if hold_at is None else row_text(hold_at)
        self.die_at = None if die_at is None else row_text(die_at)
        self.held = threading.Event()
        self.release = threading.Event()
        self.died = threading.Event()

    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        if texts and texts[0] == self.hold_at and not self.held.is_set():
            self.held.set()
            assert self.release.wait(30), "the test never released the held batch"
        if texts and texts[0] == self.die_at and not self.died.is_set():
            self.died.set()
            raise ProcessDied
        return super().embed_batch(texts, task_type=task_type)

    def rows_embedded(self) -> Counter[str]:
        examples = {e.text for e in EXAMPLES}
        return Counter(t for t in self.embedded if t not in examples)


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def finished(server: BotServer) -> bool:
    return any("Classified" in texts_of(u.params) for u in server.slack.calls("chat.update"))


def check_the_answer(server: BotServer, embedder: InterruptibleEmbedder, event_ts: str, rows: int) -> None:
    """One annotated CSV and one chart in the thread, every row classified and logged exactly once."""
    slack = server.slack
    table, chart = slack.uploads()
    assert table.filename == "tickets-classified.csv" and chart.filename == "tickets-labels.png"
    assert table.thread_ts == event_ts and chart.thread_ts == event_ts and table.channels == [DM]
    got = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["id"] for r in got] == [str(n) for n in range(rows)]
    assert [r["text"] for r in got] == [row_text(n) for n in range(rows)]
    assert all(r["best_label"] == ("billing" if int(r["id"]) % 2 else "shipping") for r in got)
    assert list(embedder.rows_embedded().values()) == [1] * rows  # no row embedded twice
    assert server.deps is not None
    logged = server.deps.store.recent_classifications(server.team, limit=rows * 2)
    assert sorted(r.text for r in logged) == sorted(row_text(n) for n in range(rows))  # nor logged twice
    (job,) = server.deps.store.jobs.find()
    assert (job.state, job.rows_done, job.rows_total) == ("done", rows, rows)
    (working,) = slack.calls("chat.postMessage")  # one progress message, from start to finish
    assert all(u.params["ts"] == working.response["ts"] for u in slack.calls("chat.update"))
    assert f"Classified {rows:,} rows of tickets.csv against set *default*" in texts_of(
        slack.calls("chat.update")[-1].params
    )


def test_a_restart_mid_job_carries_on_from_the_last_batch(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    embedder = InterruptibleEmbedder(hold_at=200)
    server = make_bot_server(database_url=database_url, embedder=embedder)
    seed(server)
    event = send_csv(server, tickets(), "classify", name="tickets.csv")
    assert embedder.held.wait(20), "the third batch never started"
    assert server.deps is not None
    stopping = server.deps.jobs

    # SIGTERM while rows 200-299 are being classified: that batch finishes and is recorded, the
    # job is given back, and the new server takes it over as it starts.
    restarting = threading.Thread(target=server.restart, kwargs={"keep_calls": True})
    restarting.start()
    wait_until(lambda: stopping.stopping, what="the server to start stopping")
    embedder.release.set()
    restarting.join(30)
    assert not restarting.is_alive()
    wait_until(lambda: finished(server), what="the result")
    wait_until(lambda: len(server.slack.uploads()) == 2, what="the uploads")
    check_the_answer(server, embedder, event["ts"], ROWS)
    updates = [str(u.params["text"]) for u in server.slack.calls("chat.update")]
    assert [u.split(": ", 1)[-1] for u in updates[:3]] == [
        "100 of 600 rows (16%)…",
        "200 of 600 rows (33%)…",
        "300 of 600 rows (50%)…",
    ]
    assert "Paused at 300 of 600 rows of tickets.csv while I restart" in updates[3]
    assert "Carrying on with tickets.csv against set *default*: 300 of 600 rows (50%)" in updates[4]
    assert "400 of 600 rows" in updates[5] and "500 of 600 rows" in updates[6]
    assert len(updates) == 8  # and the answer
    assert server.deps is not None
    (job,) = server.deps.store.jobs.find()
    assert job.attempts == 2


def test_a_dead_workers_job_is_taken_over_when_its_lease_lapses(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    embedder = InterruptibleEmbedder(die_at=200)
    # A one-second lease, so that the test does not wait a minute for the dead worker's to lapse.
    server = make_bot_server(database_url=database_url, embedder=embedder, env={"GEMBOT_JOB_LEASE": "1"})
    seed(server)
    event = send_csv(server, tickets(450), "classify", name="tickets.csv")
    assert embedder.died.wait(20), "the worker never died"
    server.settle()
    assert server.deps is not None
    (job,) = server.deps.store.jobs.find()
    assert (job.state, job.rows_done) == ("running", 200)  # nobody said anything: the worker is gone
    dead_owner = job.owner
    server.stop()  # what is left of it

    server.start(keep_calls=True)  # another worker, with the same database
    wait_until(lambda: finished(server), what="the result")
    wait_until(lambda: len(server.slack.uploads()) == 2, what="the uploads")
    check_the_answer(server, embedder, event["ts"], 450)
    assert server.deps is not None
    (job,) = server.deps.store.jobs.find()
    assert job.owner != dead_owner and job.attempts >= 2
    updates = [texts_of(u.params) for u in server.slack.calls("chat.update")]
    assert any("Carrying on with tickets.csv against set *default*: 200 of 450 rows" in u for u in updates)
