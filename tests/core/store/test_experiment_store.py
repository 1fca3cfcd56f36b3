"""Experiments in the store: created with their job, results written once and only by the job's
holder, the response cache, and batch jobs kept across restarts (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from core.errors import InvalidInput, NotFound
from core.store import BatchRecord, CachedReply, Grade, LeaseLost, ResultRecord, Store
from core.store.schema import utcnow
from tests.support.experiment_support import result


def _create(store: Store, *, owner: str | None = "me", rows: int = 3, models: int = 2) -> tuple[int, int]:
    experiment, job = store.experiments.create(
        "T1",
        name="tone",
        spec={"v": 1, "models": ["a", "b"][:models]},
        cases={"columns": ["text"], "rows": [{"text": f"t{i}"} for i in range(rows)]},
        rows=rows,
        source="cases.csv",
        origin="cli",
        job_kind="experiment_cli",
        job_parameters={"note": 1},
        owner=owner,
        lease_seconds=60,
    )
    return experiment.id, job.id


def _result(model: str, row: int, **changes: object) -> ResultRecord:
    values: dict[str, object] = {"prompt": f"p{row}", "answer": f"answer {row}", "score": 1.0}
    return result(model=model, row_index=row, **{**values, **changes})


def test_an_experiment_comes_with_its_job_which_knows_it(store: Store) -> None:
    experiment_id, job_id = _create(store)
    job = store.jobs.get(job_id)
    assert (job.kind, job.state, job.owner, job.rows_total) == ("experiment_cli", "running", "me", 6)
    assert job.parameters == {"note": 1, "experiment": experiment_id}
    experiment = store.experiments.get(experiment_id)
    assert (experiment.state, experiment.rows, experiment.job_id, experiment.team_id) == (
        "running",
        3,
        job_id,
        "T1",
    )
    assert store.experiments.cases(experiment_id)["rows"][2] == {"text": "t2"}
    with pytest.raises(NotFound):
        store.experiments.get(experiment_id, team_id="T2")


def test_results_are_written_once_and_advance_the_job(store: Store) -> None:
    experiment_id, job_id = _create(store)
    assert (
        store.experiments.record(
            experiment_id, [_result("a", 0), _result("b", 0)], job_id=job_id, owner="me", lease_seconds=60
        )
        == 2
    )
    # A row redone after a crash keeps the result first written.
    again = [_result("a", 0, answer="other"), _result("a", 1)]
    assert store.experiments.record(experiment_id, again, job_id=job_id, owner="me", lease_seconds=60) == 3
    assert store.jobs.get(job_id).rows_done == 3
    results = store.experiments.results(experiment_id)
    assert [(r.model, r.row_index, r.answer) for r in results] == [
        ("a", 0, "answer 0"),
        ("a", 1, "answer 1"),
        ("b", 0, "answer 0"),
    ]
    assert store.experiments.done(experiment_id) == {("a", 0), ("a", 1), ("b", 0)}


def test_a_process_that_lost_the_job_writes_nothing(store: Store) -> None:
    experiment_id, job_id = _create(store, owner="me")
    store.jobs.release(job_id, owner="me")
    (taken,) = store.jobs.claim(owner="other", lease_seconds=60, job_id=job_id)
    assert taken.id == job_id
    with pytest.raises(LeaseLost):
        store.experiments.record(
            experiment_id, [_result("a", 0)], job_id=job_id, owner="me", lease_seconds=60
        )
    assert store.experiments.results(experiment_id) == []


def test_claims_can_be_narrowed_to_kinds_and_to_one_job(store: Store) -> None:
    _, cli_job = _create(store, owner=None)
    store.jobs.create("T1", kind="classify_csv", input="text\na\n", rows_total=1, parameters={})
    taken = store.jobs.claim(
        owner="server", lease_seconds=60, limit=5, kinds=("classify_csv", "experiment_slack")
    )
    assert [j.kind for j in taken] == ["classify_csv"]
    assert store.jobs.claim(owner="cli", lease_seconds=60, job_id=cli_job + 1000) == []
    assert [j.id for j in store.jobs.claim(owner="cli", lease_seconds=60, job_id=cli_job)] == [cli_job]


def test_finished_experiments_say_how_they_ended(store: Store) -> None:
    experiment_id, _ = _create(store)
    store.experiments.finish(experiment_id, state="failed", error="the daily quota is spent")
    ended = store.experiments.get(experiment_id)
    assert (ended.state, ended.error) == ("failed", "the daily quota is spent")
    assert ended.finished_at is not None
    with pytest.raises(InvalidInput):
        store.experiments.finish(experiment_id, state="paused")
    newest_first = [e.id for e in store.experiments.find(team_id="T1")]
    second, _ = _create(store)
    assert [e.id for e in store.experiments.find(team_id="T1")] == [second, *newest_first]


def test_the_cache_keeps_the_first_reply_for_a_key_and_prunes_by_age(store: Store) -> None:
    entry = CachedReply(
        key="k" * 64,
        model="a",
        outcome="answered",
        text="hi",
        reason="STOP",
        input_tokens=3,
        output_tokens=2,
        thinking_tokens=1,
        latency_ms=40.0,
    )
    store.experiments.cache([entry])
    store.experiments.cache([replace(entry, text="changed")])
    assert store.experiments.cached(["k" * 64, "x" * 64]) == {"k" * 64: entry}
    assert store.experiments.prune_cache(utcnow() - timedelta(days=1)) == 0
    assert store.experiments.prune_cache(utcnow() + timedelta(seconds=1)) == 1
    assert store.experiments.cached(["k" * 64]) == {}


def test_a_batch_is_kept_and_its_state_updated(store: Store) -> None:
    experiment_id, _ = _create(store)
    now = utcnow()
    batch = BatchRecord(
        experiment_id=experiment_id,
        model="a",
        name="batches/123",
        state="pending",
        rows=(0, 2),
        error=None,
        submitted_at=now,
        updated_at=now,
    )
    store.experiments.save_batch(batch)
    store.experiments.save_batch(
        replace(batch, state="expired", error="expired after 48 h", updated_at=now + timedelta(hours=48))
    )
    (kept,) = store.experiments.batches(experiment_id)
    assert (kept.name, kept.state, kept.rows, kept.error) == (
        "batches/123",
        "expired",
        (0, 2),
        "expired after 48 h",
    )
    assert kept.submitted_at == now


def test_a_pending_experiment_starts_once_or_is_cancelled(store: Store) -> None:
    experiment, job = store.experiments.create(
        "T1",
        name="tone",
        spec={"v": 1, "models": ["a", "b"]},
        cases={"columns": ["text"], "rows": [{"text": "t"}]},
        rows=1,
        source="cases.csv",
        origin="slack",
        job_kind="experiment_slack",
        job_parameters={},
        owner=None,
        lease_seconds=60,
        pending=True,
    )
    assert job is None and experiment.state == "pending" and experiment.job_id is None
    assert store.jobs.claim(owner="anyone", lease_seconds=60, limit=5) == []
    started = store.experiments.start(
        experiment.id, job_kind="experiment_slack", job_parameters={"x": 1}, owner=None, lease_seconds=60
    )
    assert started is not None and started.state == "queued" and started.rows_total == 2
    assert started.parameters == {"x": 1, "experiment": experiment.id}
    assert store.experiments.get(experiment.id).job_id == started.id
    # A second press of the button, and a late cancel, change nothing.
    assert (
        store.experiments.start(
            experiment.id, job_kind="experiment_slack", job_parameters={}, owner=None, lease_seconds=60
        )
        is None
    )
    assert store.experiments.cancel(experiment.id) is False
    other, _ = store.experiments.create(
        "T1",
        name="x",
        spec={"v": 1, "models": ["a"]},
        cases={"columns": [], "rows": []},
        rows=1,
        source="c.csv",
        origin="slack",
        job_kind="experiment_slack",
        job_parameters={},
        owner=None,
        lease_seconds=60,
        pending=True,
    )
    assert store.experiments.cancel(other.id) is True
    assert store.experiments.get(other.id).state == "cancelled"
    assert (
        store.experiments.start(
            other.id, job_kind="experiment_slack", job_parameters={}, owner=None, lease_seconds=60
        )
        is None
    )


def test_grades_come_later_once_and_only_from_the_jobs_holder(store: Store) -> None:
    experiment_id, job_id = _create(store)
    store.experiments.record(
        experiment_id,
        [_result("a", 0, score=None), _result("a", 1, score=None)],
        job_id=job_id,
        owner="me",
        lease_seconds=60,
    )
    store.experiments.grade(
        experiment_id, [Grade("a", 0, 4.0, "fine", 30, 8)], job_id=job_id, owner="me", lease_seconds=60
    )
    # A second grade of the same result changes nothing; another process may not grade at all.
    store.experiments.grade(
        experiment_id, [Grade("a", 0, 1.0, "bad", 1, 1)], job_id=job_id, owner="me", lease_seconds=60
    )
    with pytest.raises(LeaseLost):
        store.experiments.grade(
            experiment_id, [Grade("a", 1, 2.0, "x", 1, 1)], job_id=job_id, owner="other", lease_seconds=60
        )
    first, second = store.experiments.results(experiment_id)
    assert (first.score, first.judge_reason, first.judge_input_tokens, first.judge_output_tokens) == (
        4.0,
        "fine",
        30,
        8,
    )
    assert (second.score, second.judge_reason) == (None, None)
