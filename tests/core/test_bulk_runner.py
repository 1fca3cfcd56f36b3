"""Bulk jobs: stored with their progress, each batch recorded once, taken over when a process stops or dies.

On SQLite and PostgreSQL, through the real migrations: the store's conditional updates (claim,
record, release) and the `JobRunner` that classifies a CSV batch by batch on top of them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.bulk_runner import KIND_CLASSIFY_CSV, MAX_ATTEMPTS, CsvJob, JobGaveUp, JobInterrupted, JobRunner
from core.engine import Engine
from core.errors import DatabaseUnavailable, NotFound
from core.gemini.client import GeminiClient
from core.settings import Settings
from core.store import ClassificationLog, ExampleInput, LeaseLost, Store
from core.store.db import make_engine
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_settings

TEAM = "T1"
EXAMPLES = [
    ExampleInput("billing", "my card was charged twice"),
    ExampleInput("billing", "refund my payment please"),
    ExampleInput("shipping", "my parcel has not arrived"),
    ExampleInput("shipping", "where is my delivery parcel"),
]


def csv_of(n: int) -> str:
    return "id,text\n" + "".join(
        f"{i},{'refund the charge on my card' if i % 2 else 'my parcel is late'} {i}\n" for i in range(n)
    )


def csv_job(runner: JobRunner, rows: int, *, batch: int = 100) -> int:
    spec = CsvJob(
        set_name="support", file_name="t.csv", user_id="U1", labels=("billing", "shipping"), batch=batch
    )
    job = runner.create(
        TEAM, kind=KIND_CLASSIFY_CSV, content=csv_of(rows), rows_total=rows, parameters=spec.parameters()
    )
    return job.id


def outputs(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"row": start + i} for i in range(n)]


@pytest.fixture
def engine_of(store: Store) -> Engine:
    store.add_examples(TEAM, "support", EXAMPLES)
    return Engine(store=store, embedder=BagOfWordsEmbedder(), settings=Settings())


# -- the store ---------------------------------------------------------------------------------------


def test_a_new_job_is_stored_with_its_input_and_parameters(store: Store) -> None:
    job = store.jobs.create(
        TEAM, kind="classify_csv", input="text\nné\x00\n", rows_total=1, parameters={"set": "s", "n": [1]}
    )
    again = store.jobs.get(job.id)
    assert again == job
    assert (again.state, again.owner, again.attempts, again.rows_done) == ("queued", None, 0, 0)
    assert again.text == "text\nné\x00\n"  # bytes: PostgreSQL text would refuse the NUL
    assert again.parameters == {"set": "s", "n": [1]}
    assert store.jobs.counts() == {"queued": 1, "running": 0, "done": 0, "failed": 0}
    with pytest.raises(NotFound):
        store.jobs.get(job.id + 1000)


def test_only_one_process_takes_a_queued_job(store: Store) -> None:
    job = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={})
    (taken,) = store.jobs.claim(owner="a", lease_seconds=60)
    assert (taken.id, taken.state, taken.owner, taken.attempts) == (job.id, "running", "a", 1)
    assert taken.lease_expires_at is not None and taken.lease_expires_at > datetime.now(UTC)
    assert store.jobs.claim(owner="b", lease_seconds=60) == []


def test_racing_processes_take_each_job_once(store: Store, database_url: str) -> None:
    for _ in range(6):
        store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={})
    stores = [Store(make_engine(database_url)) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    taken: dict[str, list[int]] = {}

    def take(name: str, s: Store) -> None:
        barrier.wait()
        taken[name] = [j.id for j in s.jobs.claim(owner=name, lease_seconds=60, limit=6)]

    threads = [threading.Thread(target=take, args=(f"w{n}", s)) for n, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    everything = [i for ids in taken.values() for i in ids]
    assert len(everything) == 6 and len(set(everything)) == 6
    owners = {j.id: j.owner for j in store.jobs.find()}
    assert all(owners[i] == name for name, ids in taken.items() for i in ids)


def test_a_live_lease_is_kept_and_a_lapsed_one_is_taken_over(store: Store) -> None:
    job = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=300, parameters={}, owner="a")
    assert job.state == "running" and job.attempts == 1
    assert store.jobs.claim(owner="b", lease_seconds=60) == []
    assert store.jobs.heartbeat([job.id], owner="a", lease_seconds=0.05) == 1
    assert (
        store.jobs.record_batch(job.id, owner="a", start=0, outputs=outputs(100), lease_seconds=0.05) == 100
    )
    time.sleep(0.1)  # "a" died: its lease lapses
    (taken,) = store.jobs.claim(owner="b", lease_seconds=60)
    assert (taken.owner, taken.rows_done, taken.attempts) == ("b", 100, 2)
    # The dead process cannot write any more, and cannot finish or release the job.
    with pytest.raises(LeaseLost):
        store.jobs.record_batch(job.id, owner="a", start=100, outputs=outputs(100, 100), lease_seconds=60)
    assert store.jobs.heartbeat([job.id], owner="a", lease_seconds=60) == 0
    assert not store.jobs.finish(job.id, owner="a") and not store.jobs.release(job.id, owner="a")
    assert (
        store.jobs.record_batch(job.id, owner="b", start=100, outputs=outputs(200, 100), lease_seconds=60)
        == 300
    )
    assert store.jobs.outputs(job.id) == outputs(300)
    assert store.jobs.finish(job.id, owner="b")
    assert store.jobs.get(job.id).state == "done"
    assert store.jobs.claim(owner="c", lease_seconds=60) == []


def test_a_batch_is_recorded_once_with_its_log_entries(store: Store) -> None:
    job = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=4, parameters={}, owner="a")
    log = ClassificationLog(
        team_id=TEAM,
        set_name="support",
        user_id="U1",
        source="slack-csv",
        results=[("one", "billing", 0.9, "centroid", {"billing": 0.8}), ("two", None, 0.4, "centroid", {})],
    )
    assert (
        store.jobs.record_batch(job.id, owner="a", start=0, outputs=outputs(2), lease_seconds=60, log=log)
        == 2
    )
    # The same batch again (a retry after a lost answer, say) is refused, not written twice.
    with pytest.raises(LeaseLost):
        store.jobs.record_batch(job.id, owner="a", start=0, outputs=outputs(2), lease_seconds=60, log=log)
    # More rows than the job has are refused too.
    with pytest.raises(LeaseLost):
        store.jobs.record_batch(job.id, owner="a", start=2, outputs=outputs(3, 2), lease_seconds=60)
    assert store.jobs.get(job.id).rows_done == 2
    assert store.jobs.outputs(job.id) == outputs(2)
    logged = store.recent_classifications(TEAM)
    assert sorted((r.text, r.label, r.source, r.user_id) for r in logged) == [
        ("one", "billing", "slack-csv", "U1"),
        ("two", None, "slack-csv", "U1"),
    ]


def test_a_released_job_keeps_its_progress(store: Store) -> None:
    job = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=200, parameters={}, owner="a")
    store.jobs.record_batch(job.id, owner="a", start=0, outputs=outputs(100), lease_seconds=60)
    assert store.jobs.release(job.id, owner="a")
    released = store.jobs.get(job.id)
    assert (released.state, released.owner, released.rows_done) == ("queued", None, 100)
    (taken,) = store.jobs.claim(owner="b", lease_seconds=60)
    assert (taken.rows_done, taken.attempts) == (100, 2)


def test_failed_and_old_finished_jobs(store: Store) -> None:
    failed = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={}, owner="a")
    assert store.jobs.fail(failed.id, error="the set was deleted", owner="a")
    assert store.jobs.get(failed.id).error == "the set was deleted"
    assert not store.jobs.fail(failed.id, error="again")  # finished jobs stay as they are
    done = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={}, owner="a")
    store.jobs.record_batch(done.id, owner="a", start=0, outputs=outputs(1), lease_seconds=60)
    store.jobs.finish(done.id, owner="a")
    waiting = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={})
    assert store.jobs.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.jobs.prune(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert [j.id for j in store.jobs.find()] == [waiting.id]
    assert store.jobs.outputs(done.id) == []  # the rows went with their job


# -- the runner --------------------------------------------------------------------------------------


def test_a_stopped_runner_gives_the_job_back_and_another_finishes_it(store: Store, engine_of: Engine) -> None:
    embedder = engine_of.embeddings.embedder
    assert isinstance(embedder, BagOfWordsEmbedder)
    first = JobRunner(store, lease_seconds=60)
    job_id = csv_job(first, 250)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 100:
            first.stop()  # SIGTERM during the second batch... checked before the next one

    with pytest.raises(JobInterrupted) as stopped:
        first.classify_csv(store.jobs.get(job_id), engine=engine_of, progress=progress)
    assert (stopped.value.rows_done, stopped.value.rows_total) == (100, 250)
    assert seen == [100] and first.active == 0
    assert first.claim() == []  # a stopping runner takes nothing on
    assert store.jobs.get(job_id).state == "queued"

    second = JobRunner(store, lease_seconds=60)
    (job,) = second.claim()
    result = second.classify_csv(job, engine=engine_of, progress=lambda d, t: seen.append(d))
    assert seen == [100, 200, 250]
    assert second.finish(job)
    assert [r[0] for r in result.table.rows] == [str(i) for i in range(250)]
    expected = ["billing" if i % 2 else "shipping" for i in range(250)]
    assert [p.best_label for p in result.predictions] == expected
    assert result.labels == ["billing", "shipping"]
    rows = [t for t in embedder.embedded if t not in {e.text for e in EXAMPLES}]
    assert len(rows) == 250 and set(Counter(rows).values()) == {1}  # no row embedded twice
    assert len(store.recent_classifications(TEAM, limit=1000)) == 250  # nor logged twice
    assert store.jobs.get(job_id).state == "done"


def test_a_dead_runners_job_is_taken_over_after_its_lease(store: Store, engine_of: Engine) -> None:
    dead = JobRunner(store, lease_seconds=2.0, owner="dead-host:1:x")
    job_id = csv_job(dead, 300)

    def die(done: int, total: int) -> None:
        if done == 200:
            raise KeyboardInterrupt  # stands for the process dying: nothing is tidied up

    with pytest.raises(KeyboardInterrupt):
        dead.classify_csv(store.jobs.get(job_id), engine=engine_of, progress=die)
    alive = JobRunner(store, lease_seconds=60)
    assert alive.claim() == []  # the lease has not lapsed yet
    time.sleep(2.1)
    (job,) = alive.claim()
    assert (job.rows_done, job.attempts, job.owner) == (200, 2, alive.owner)
    result = alive.classify_csv(job, engine=engine_of)
    assert len(result.predictions) == 300
    assert len(store.recent_classifications(TEAM, limit=1000)) == 300


def test_the_runner_renews_the_leases_of_its_running_jobs_only(store: Store, engine_of: Engine) -> None:
    runner = JobRunner(store, lease_seconds=60)
    job_id = csv_job(runner, 200)
    other = store.jobs.create(TEAM, kind="k", input=b"x", rows_total=1, parameters={}, owner=runner.owner)
    renewed: list[int] = []
    runner.classify_csv(
        store.jobs.get(job_id), engine=engine_of, progress=lambda d, t: renewed.append(runner.heartbeat())
    )
    assert renewed == [1, 1]  # the job being classified, not the other one it is not running
    assert runner.heartbeat() == 0
    assert store.jobs.get(other.id).owner == runner.owner


def test_a_job_that_keeps_dying_is_given_up(store: Store, engine_of: Engine) -> None:
    runner = JobRunner(store, lease_seconds=0.01)
    job_id = csv_job(runner, 10)
    for _ in range(MAX_ATTEMPTS - 1):  # the first attempt was its creation
        time.sleep(0.02)
        assert [j.id for j in runner.claim()] == [job_id]
    time.sleep(0.02)
    (job,) = runner.claim()
    with pytest.raises(JobGaveUp, match="interrupted 5 times"):
        runner.classify_csv(job, engine=engine_of)


def test_a_job_waits_out_a_lost_database_with_its_progress(
    store: Store, engine_of: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = JobRunner(store, lease_seconds=60)
    job_id = csv_job(runner, 300)
    real = store.jobs.record_batch
    calls: list[int] = []

    def record_batch(job_id: int, **kwargs: Any) -> int:
        calls.append(kwargs["start"])
        if kwargs["start"] == 100 and calls.count(100) == 1:
            raise DatabaseUnavailable("cannot use the database: server closed the connection unexpectedly")
        return real(job_id, **kwargs)

    monkeypatch.setattr(store.jobs, "record_batch", record_batch)
    with pytest.raises(JobInterrupted) as lost:
        runner.classify_csv(store.jobs.get(job_id), engine=engine_of)
    assert lost.value.database_lost and lost.value.rows_done == 100
    waiting = store.jobs.get(job_id)
    assert (waiting.state, waiting.rows_done) == ("queued", 100)  # given back, nothing lost
    (job,) = runner.claim()
    assert len(runner.classify_csv(job, engine=engine_of).predictions) == 300
    assert calls == [0, 100, 100, 200]
    assert len(store.recent_classifications(TEAM, limit=1000)) == 300


def test_a_jobs_unsure_rows_never_go_to_gemini(store: Store, gemini_standin: GeminiStandIn) -> None:
    """Escalation is for one text a person is waiting on; a job's rows stay "not sure"."""
    store.add_examples(TEAM, "support", EXAMPLES)
    settings = gemini_settings(gemini_standin, gemini_retries=0, min_similarity=2.0)
    engine = Engine(
        store=store,
        embedder=BagOfWordsEmbedder(),
        settings=settings,
        gemini=GeminiClient.from_settings(settings),
    )
    gemini_standin.reply('{"label": "billing"}')
    runner = JobRunner(store, lease_seconds=60)
    job_id = csv_job(runner, 6)
    result = runner.classify_csv(store.jobs.get(job_id), engine=engine)
    assert len(result.predictions) == 6 and all(p.abstained for p in result.predictions)
    assert gemini_standin.requests("generate") == []
    # The same engine does ask for a single text, so the job's silence is the job's choice.
    (one,) = engine.classify(TEAM, "support", ["refund the charge on my card 1"])
    assert one.method == "gemini" and len(gemini_standin.requests("generate")) == 1
