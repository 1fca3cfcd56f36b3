"""Tuned encoders and re-tune jobs in the store, on SQLite and PostgreSQL through the real migrations:
one encoder per set read without its bytes, every edit of a tuned set asking for a tune again, and
the job's leases, settling, finishing, back-off and giving up decided by the database."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, update

from core.errors import InvalidInput, NotFound
from core.store import ExampleInput, Store, TunedEncoderInput, TuneJob
from core.store.db import current_revision, downgrade, head_revision, make_engine, upgrade
from core.store.schema import TunedEncoderRow, TuneJobRow, utcnow

TEAM = "T1"
TWO = [ExampleInput("billing", "my card was charged twice"), ExampleInput("shipping", "where is my parcel")]
BASE = "local/all-MiniLM-L6-v2/384"
SETTLE = 60.0


def encoder_for(store: Store, name: str = "support", team: str = TEAM, **changes: Any) -> TunedEncoderInput:
    encoder = TunedEncoderInput(
        team_id=team,
        set_name=name,
        set_version=store.get_set(team, name).version,
        base=BASE,
        kind="adapter",
        format=1,
        examples=2,
        seconds=12.5,
    )
    return dataclasses.replace(encoder, **changes)


def tuned_set(store: Store, name: str = "support", team: str = TEAM, blob: bytes = b"tuned") -> None:
    """A set with examples and a tuned encoder (and so, from now on, re-tune jobs)."""
    store.add_examples(team, name, TWO)
    assert store.save_tuned_encoder(encoder_for(store, name, team), blob) is True


def rows(store: Store, table: type[TunedEncoderRow] | type[TuneJobRow]) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        found = conn.execute(select(table.team_id, table.set_name)).all()
    return sorted((str(t), str(s)) for t, s in found)


def job_of(store: Store, name: str = "support", team: str = TEAM) -> TuneJob | None:
    found = [job for job in store.tune_jobs(team) if job.set_name == name]
    return found[0] if found else None


def age(store: Store, seconds: float, name: str = "support", team: str = TEAM) -> None:
    """Make the set's job look asked for `seconds` ago (instead of waiting that long)."""
    with store.engine.begin() as conn:
        conn.execute(
            update(TuneJobRow)
            .where(TuneJobRow.team_id == team, TuneJobRow.set_name == name)
            .values(requested_at=utcnow() - timedelta(seconds=seconds))
        )


def lapse(store: Store, column: str, name: str = "support", team: str = TEAM) -> None:
    """Put the job's lease (or its back-off) a second in the past."""
    with store.engine.begin() as conn:
        conn.execute(
            update(TuneJobRow)
            .where(TuneJobRow.team_id == team, TuneJobRow.set_name == name)
            .values({column: utcnow() - timedelta(seconds=1)})
        )


def claim(store: Store, owner: str = "w1", settle: float = SETTLE) -> TuneJob | None:
    return store.claim_tune(owner=owner, settle_seconds=settle, lease_seconds=600)


def near_now(moment: datetime | None, *, within: float = 30) -> bool:
    return moment is not None and abs((moment - utcnow()).total_seconds()) < within


# -- tuned encoders -------------------------------------------------------------------------------


def test_a_tuned_encoder_is_kept_and_read_back_without_its_bytes(store: Store) -> None:
    store.add_examples(TEAM, "support", TWO)
    assert store.tuned_encoder(TEAM, "support") is None
    blob = bytes(range(256)) * 1000
    encoder = encoder_for(store)
    assert store.save_tuned_encoder(encoder, blob) is True
    info = store.tuned_encoder(" T1 ", "support ")
    assert info is not None
    assert (info.team_id, info.set_name, info.set_version, info.base, info.kind) == (
        TEAM,
        "support",
        encoder.set_version,
        BASE,
        "adapter",
    )
    assert (info.format, info.examples, info.seconds) == (1, 2, 12.5)
    assert near_now(info.created_at) and info.created_at.tzinfo is not None
    # The digest is the store's own sha256 of the bytes: the caller never gives one.
    assert info.digest == hashlib.sha256(blob).hexdigest()
    assert store.tuned_encoder_blob(TEAM, "support", info.digest) == blob
    assert store.tuned_encoder_blob(TEAM, "support", hashlib.sha256(b"other").hexdigest()) is None
    assert store.tuned_encoder_blob(TEAM, "sales", info.digest) is None
    assert store.tuned_encoder("T2", "support") is None


def test_saving_again_replaces_the_encoder_and_its_old_digest_reads_nothing(store: Store) -> None:
    tuned_set(store, blob=b"first tune")
    first = store.tuned_encoder(TEAM, "support")
    store.add_examples(TEAM, "support", [ExampleInput("billing", "charged again")])
    newer = encoder_for(store, kind="encoder", examples=3)
    assert store.save_tuned_encoder(newer, b"second tune") is True
    second = store.tuned_encoder(TEAM, "support")
    assert first is not None and second is not None
    assert (second.set_version, second.kind, second.examples) == (newer.set_version, "encoder", 3)
    assert second.digest == hashlib.sha256(b"second tune").hexdigest() != first.digest
    # A reader that looked before the replacement gets nothing rather than other bytes.
    assert store.tuned_encoder_blob(TEAM, "support", first.digest) is None
    assert store.tuned_encoder_blob(TEAM, "support", second.digest) == b"second tune"
    assert rows(store, TunedEncoderRow) == [(TEAM, "support")]
    # A slow tune of the older version does not replace the newer one; the same version does.
    assert store.save_tuned_encoder(dataclasses.replace(newer, set_version=first.set_version), b"x") is False
    assert store.tuned_encoder(TEAM, "support") == second
    assert store.save_tuned_encoder(dataclasses.replace(newer, base="gemini/x/768"), b"third") is True
    third = store.tuned_encoder(TEAM, "support")
    assert third is not None and third.base == "gemini/x/768"


def test_a_save_for_a_missing_or_recreated_set_writes_nothing(store: Store) -> None:
    store.add_examples(TEAM, "support", TWO)
    store.add_examples(TEAM, "support", [ExampleInput("billing", "charged again")])
    old = encoder_for(store)
    assert store.save_tuned_encoder(dataclasses.replace(old, set_name="sales"), b"tuned") is False
    assert store.save_tuned_encoder(dataclasses.replace(old, team_id="T2"), b"tuned") is False
    # Removed while the tune ran, and created again under its name: now at a lower version.
    store.remove_set(TEAM, "support")
    assert store.save_tuned_encoder(old, b"tuned") is False
    store.add_examples(TEAM, "support", TWO)
    assert store.get_set(TEAM, "support").version < old.set_version
    assert store.save_tuned_encoder(old, b"tuned") is False
    assert rows(store, TunedEncoderRow) == []


def test_bad_encoders_are_refused_with_a_sentence(store: Store) -> None:
    store.add_examples(TEAM, "support", TWO)
    encoder = encoder_for(store)
    with pytest.raises(InvalidInput, match="empty"):
        store.save_tuned_encoder(encoder, b"")
    for bad in (
        {"kind": "k" * 33},
        {"base": ""},
        {"examples": -1},
        {"seconds": float("nan")},
        {"set_version": 0},
    ):
        with pytest.raises(InvalidInput):
            store.save_tuned_encoder(dataclasses.replace(encoder, **bad), b"tuned")
    assert rows(store, TunedEncoderRow) == []


def test_damaged_bytes_are_not_handed_out(store: Store) -> None:
    tuned_set(store, blob=b"tuned bytes")
    info = store.tuned_encoder(TEAM, "support")
    assert info is not None
    with store.engine.begin() as conn:
        conn.execute(update(TunedEncoderRow).values(blob=b"tuned bytez"))
    assert store.tuned_encoder_blob(TEAM, "support", info.digest) is None


def test_remove_set_deletes_its_encoder_and_its_job_only(store: Store) -> None:
    tuned_set(store, "support")
    tuned_set(store, "sales")
    tuned_set(store, "support", team="T2")
    for team, name in [(TEAM, "support"), (TEAM, "sales"), ("T2", "support")]:
        store.request_tune(team, name, requested_by="U1")
    store.remove_set(TEAM, "support")
    assert rows(store, TunedEncoderRow) == [(TEAM, "sales"), ("T2", "support")]
    assert rows(store, TuneJobRow) == [(TEAM, "sales"), ("T2", "support")]
    # Created again under its name, it starts untuned: its edits ask for nothing.
    store.add_examples(TEAM, "support", TWO)
    assert store.tuned_encoder(TEAM, "support") is None and job_of(store) is None


# -- edits ask for a tune -------------------------------------------------------------------------


def test_edits_of_a_tuned_set_ask_for_a_tune_and_of_an_untuned_one_do_not(store: Store) -> None:
    store.add_examples(TEAM, "untuned", TWO)
    (example,) = store.add_examples(TEAM, "untuned", [ExampleInput("billing", "refund me")]).ids
    store.remove_example(TEAM, "untuned", example)
    store.remove_label(TEAM, "untuned", "shipping")
    assert rows(store, TuneJobRow) == []

    tuned_set(store)
    assert job_of(store) is None  # tuning is not an edit
    (added,) = store.add_examples(TEAM, "support", [ExampleInput("billing", "refund me")]).ids
    job = job_of(store)
    assert job is not None
    assert (job.attempts, job.requested_by, job.owner, job.last_error) == (0, None, None, None)
    assert near_now(job.requested_at)

    # Each later edit moves the request, so the tune waits for the last of them.
    moments = [job.requested_at]
    for edit in (
        lambda: store.remove_example(TEAM, "support", added),
        lambda: store.add_examples(TEAM, "support", [ExampleInput("returns", "send it back")]),
        lambda: store.remove_label(TEAM, "support", "returns"),
    ):
        age(store, 120)
        edit()
        later = job_of(store)
        assert later is not None and near_now(later.requested_at)
        moments.append(later.requested_at)
    assert rows(store, TuneJobRow) == [(TEAM, "support")]
    # An add that adds nothing is no edit.
    age(store, 120)
    store.add_examples(TEAM, "support", TWO)
    unchanged = job_of(store)
    assert unchanged is not None and not near_now(unchanged.requested_at, within=100)


def test_an_edit_starts_a_failed_job_afresh(store: Store) -> None:
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by="U1")
    age(store, SETTLE + 1)
    job = claim(store)
    assert job is not None
    assert store.fail_tune(job, owner="w1", error="out of memory", retry_after=3600, max_attempts=3)
    store.add_examples(TEAM, "support", [ExampleInput("billing", "refund me")])
    again = job_of(store)
    assert again is not None
    assert (again.attempts, again.last_error, again.not_before, again.requested_by) == (0, None, None, "U1")
    age(store, SETTLE + 1)
    assert claim(store) is not None  # no back-off left


def test_request_tune(store: Store) -> None:
    with pytest.raises(NotFound, match="no label set 'support'"):
        store.request_tune(TEAM, "support", requested_by="U1")
    assert rows(store, TuneJobRow) == []
    # A set never tuned may be asked for explicitly: that is how a first tune is started.
    store.add_examples(TEAM, "support", TWO)
    store.request_tune(TEAM, " support ", requested_by="U1")
    job = job_of(store)
    assert job is not None and job.requested_by == "U1" and near_now(job.requested_at)
    age(store, 120)
    store.request_tune(TEAM, "support", requested_by=None)
    again = job_of(store)
    assert again is not None and again.requested_by is None and near_now(again.requested_at)
    assert store.tune_jobs("T2") == []


def test_a_first_tune_asked_for_waits_for_edits_and_is_asked_again_by_them(store: Store) -> None:
    # No encoder yet, but a job: edits move it like a tuned set's, so the first tune sees them.
    store.add_examples(TEAM, "support", TWO)
    store.request_tune(TEAM, "support", requested_by="U1")
    age(store, SETTLE + 1)
    store.add_examples(TEAM, "support", [ExampleInput("billing", "refund me")])
    assert claim(store) is None
    age(store, SETTLE + 1)
    job = claim(store)
    assert job is not None
    store.add_examples(TEAM, "support", [ExampleInput("billing", "charged again")])
    assert store.save_tuned_encoder(encoder_for(store), b"first") is True
    assert store.finish_tune(job, owner="w1") is False
    kept = job_of(store)
    assert kept is not None and kept.requested_by == "U1" and kept.owner is None


# -- claiming, settling, leases -------------------------------------------------------------------


def test_a_job_is_due_only_once_its_edits_have_settled(store: Store) -> None:
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by="U1")
    assert claim(store) is None
    age(store, SETTLE - 5)
    assert claim(store) is None
    age(store, SETTLE + 5)
    job = claim(store, "w1")
    assert job is not None
    assert (job.team_id, job.set_name, job.attempts, job.requested_by, job.owner) == (
        TEAM,
        "support",
        1,
        "U1",
        "w1",
    )
    assert job.lease_until is not None and near_now(job.lease_until - timedelta(seconds=600))
    # Held: nobody else takes it while the lease runs.
    assert claim(store, "w2") is None
    assert store.renew_tune(job, owner="w1", lease_seconds=600) is True
    assert store.renew_tune(job, owner="w2", lease_seconds=600) is False
    # Its holder died: once the lease lapses another process takes it over.
    lapse(store, "lease_until")
    taken = claim(store, "w2")
    assert taken is not None and (taken.owner, taken.attempts) == ("w2", 2)
    assert store.renew_tune(job, owner="w1", lease_seconds=600) is False


def test_the_longest_waiting_job_goes_first(store: Store) -> None:
    for name, waited in (("a", 100), ("b", 300), ("c", 200)):
        tuned_set(store, name)
        store.request_tune(TEAM, name, requested_by=None)
        age(store, waited, name)
    taken = [claim(store) for _ in range(4)]
    assert [job.set_name if job else None for job in taken] == ["b", "c", "a", None]


def test_two_claimers_only_one_wins(store: Store, database_url: str) -> None:
    for name in ("a", "b", "c"):
        tuned_set(store, name)
        store.request_tune(TEAM, name, requested_by=None)
        age(store, SETTLE + 1, name)
    stores = [Store.open(database_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def take(owner: str, mine: Store) -> None:
        try:
            barrier.wait()
            got = []
            while (job := claim(mine, owner)) is not None:
                got.append(job.set_name)
            taken[owner] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(f"w{n}", s)) for n, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    assert errors == []
    everything = sorted(name for names in taken.values() for name in names)
    assert everything == ["a", "b", "c"]
    owners = {job.set_name: (job.owner, job.attempts) for job in store.tune_jobs(TEAM)}
    assert all(owners[name] == (owner, 1) for owner, names in taken.items() for name in names)


# -- finishing and failing ------------------------------------------------------------------------


def test_finishing_deletes_the_job_unless_an_edit_came_in_meanwhile(store: Store) -> None:
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by="U1")
    age(store, SETTLE + 1)
    job = claim(store)
    assert job is not None
    # An edit while the tune runs: the job stays, given back, to be tuned once settled again.
    store.add_examples(TEAM, "support", [ExampleInput("billing", "refund me")])
    assert store.finish_tune(job, owner="w1") is False
    kept = job_of(store)
    assert kept is not None and (kept.owner, kept.lease_until, kept.attempts) == (None, None, 0)
    assert claim(store) is None  # just edited: not settled yet
    age(store, SETTLE + 1)
    again = claim(store, "w2")
    assert again is not None and again.attempts == 1
    # Finished by someone who lost the lease: nothing changes.
    assert store.finish_tune(again, owner="w1") is False
    assert job_of(store) == again
    assert store.finish_tune(again, owner="w2") is True
    assert rows(store, TuneJobRow) == []
    # The tuned encoder stays; only its next edit asks again.
    assert store.tuned_encoder(TEAM, "support") is not None


def test_a_failed_tune_backs_off_and_is_given_up(store: Store) -> None:
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by="U1")
    age(store, SETTLE + 1)
    job = claim(store)
    assert job is not None
    error = "CUDA out of memory\x00" + "x" * 1000
    assert store.fail_tune(job, owner="w1", error=error, retry_after=300, max_attempts=2) is True
    failed = job_of(store)
    assert failed is not None and failed.last_error is not None
    assert len(failed.last_error) == 500 and failed.last_error.startswith("CUDA out of memory\ufffd")
    assert (failed.owner, failed.lease_until, failed.attempts) == (None, None, 1)
    assert failed.not_before is not None and near_now(failed.not_before - timedelta(seconds=300))
    assert failed.requested_at == job.requested_at  # still asked for at the same moment
    # Settled long ago, but held back until the retry delay is over.
    assert claim(store) is None
    lapse(store, "not_before")
    second = claim(store, "w2")
    assert second is not None and second.attempts == 2
    # Someone who lost the lease cannot fail it, nor give it up.
    assert store.fail_tune(second, owner="w1", error="late", retry_after=0, max_attempts=1) is True
    assert job_of(store) == second
    # The second attempt of two fails: given up, the job goes.
    assert store.fail_tune(second, owner="w2", error="again", retry_after=300, max_attempts=2) is False
    assert rows(store, TuneJobRow) == []
    with pytest.raises(InvalidInput):
        store.fail_tune(second, owner="w2", error="x", retry_after=-1, max_attempts=2)


def test_a_job_of_a_removed_set_cannot_be_renewed_or_finished(store: Store) -> None:
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by=None)
    age(store, SETTLE + 1)
    job = claim(store)
    assert job is not None
    store.remove_set(TEAM, "support")
    assert store.renew_tune(job, owner="w1", lease_seconds=60) is False
    assert store.finish_tune(job, owner="w1") is False
    assert rows(store, TuneJobRow) == []


# -- the migration --------------------------------------------------------------------------------


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def test_migration_0013_goes_down_and_up(engine: Engine) -> None:
    upgrade(engine)
    store = Store(engine)
    tuned_set(store)
    store.request_tune(TEAM, "support", requested_by="U1")
    assert {"tuned_encoders", "tune_jobs"} <= set(inspect(engine).get_table_names())
    downgrade(engine, "0012")
    assert current_revision(engine) == "0012"
    assert not {"tuned_encoders", "tune_jobs"} & set(inspect(engine).get_table_names())
    assert store.get_set(TEAM, "support").label_counts == {"billing": 1, "shipping": 1}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert store.tuned_encoder(TEAM, "support") is None and store.tune_jobs(TEAM) == []
    # Through the models the migration built: primary keys (team, set), and nothing else.
    inspector = inspect(engine)
    for table in ("tuned_encoders", "tune_jobs"):
        assert inspector.get_pk_constraint(table)["constrained_columns"] == ["team_id", "set_name"]
        assert inspector.get_foreign_keys(table) == [] and inspector.get_indexes(table) == []
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(TunedEncoderRow)) == 0
