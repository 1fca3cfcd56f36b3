"""The Store's Slack tables on SQLite and PostgreSQL: event claims, thread conversations, evaluations."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidInput
from core.store import Store

T1, T2 = "T0001", "T0002"


def test_an_event_is_claimed_once(store: Store) -> None:
    assert store.claim_event(T1, "Ev001") is True
    assert store.claim_event(T1, "Ev001") is False
    assert store.claim_event(T2, "Ev001") is False  # event ids are unique across workspaces
    assert store.claim_event(T1, "Ev002") is True


def test_claims_survive_reopening_the_database(database_url: str) -> None:
    first = Store.open(database_url)
    try:
        assert first.claim_event(T1, "EvRestart")
    finally:
        first.close()
    second = Store.open(database_url)
    try:
        assert second.claim_event(T1, "EvRestart") is False
    finally:
        second.close()


def test_racing_claims_have_exactly_one_winner(database_url: str) -> None:
    # Separate stores stand for separate worker processes, each with its own connection pool.
    stores = [Store.open(database_url, migrate=False) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    results: list[bool] = []
    errors: list[BaseException] = []

    def claim(store: Store) -> None:
        try:
            barrier.wait()
            results.append(store.claim_event(T1, "EvRace"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert sorted(results) == [False] * 5 + [True]


def test_pruning_forgets_old_claims_only(store: Store) -> None:
    store.claim_event(T1, "EvOld")
    assert store.prune_events(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.prune_events(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert store.claim_event(T1, "EvOld") is True
    with pytest.raises(InvalidInput):
        store.prune_events(datetime.now())  # naive


def test_a_conversation_keeps_turns_in_order_with_their_images(store: Store) -> None:
    png, jpeg = b"\x89PNG fake bytes", b"\xff\xd8\xff fake jpeg"
    assert store.has_conversation(T1, "C1", "1700000000.000100") is False
    assert store.conversation(T1, "C1", "1700000000.000100") == []
    first = store.add_turn(
        T1,
        "C1",
        "1700000000.000100",
        "user",
        "What is this?",
        images=[("image/png", png), ("image/jpeg", jpeg)],
    )
    store.add_turn(T1, "C1", "1700000000.000100", "model", "A cat.")
    store.add_turn(T1, "C1", "1700000000.000100", "user", "And its colour?")
    store.add_turn(T1, "C1", "1700000000.999999", "user", "another thread")
    store.add_turn(T2, "C1", "1700000000.000100", "user", "another workspace")

    turns = store.conversation(T1, "C1", "1700000000.000100")
    assert [(t.role, t.text) for t in turns] == [
        ("user", "What is this?"),
        ("model", "A cat."),
        ("user", "And its colour?"),
    ]
    assert turns[0].id == first
    assert [(i.mime_type, i.data, i.sha256) for i in turns[0].images] == [
        ("image/png", png, hashlib.sha256(png).hexdigest()),
        ("image/jpeg", jpeg, hashlib.sha256(jpeg).hexdigest()),
    ]
    assert turns[1].images == () and turns[0].created_at.tzinfo is not None
    assert store.has_conversation(T1, "C1", "1700000000.000100") is True
    assert store.has_conversation(T1, "C2", "1700000000.000100") is False


def test_an_image_only_turn_is_fine_and_bad_turns_are_refused(store: Store) -> None:
    store.add_turn(T1, "D1", "1.1", "user", "", images=[("image/png", b"png")])
    assert store.conversation(T1, "D1", "1.1")[0].text == ""
    with pytest.raises(InvalidInput, match="role"):
        store.add_turn(T1, "D1", "1.1", "assistant", "hi")
    with pytest.raises(InvalidInput, match="needs text"):
        store.add_turn(T1, "D1", "1.1", "user", "  ")
    with pytest.raises(InvalidInput, match="channel id"):
        store.add_turn(T1, " ", "1.1", "user", "hi")
    assert len(store.conversation(T1, "D1", "1.1")) == 1


def test_latest_evaluation_per_set(store: Store) -> None:
    assert store.latest_evaluations(T1) == {}
    store.record_evaluation(
        T1, "support", set_version=3, method="centroid", strategy="5-fold", n=40, accuracy=0.7, coverage=0.9
    )
    newest = store.record_evaluation(
        T1,
        "support",
        set_version=4,
        method="logreg",
        strategy="5-fold",
        n=42,
        accuracy=0.8,
        coverage=0.95,
        answered_accuracy=0.84,
    )
    store.record_evaluation(
        T1,
        "intents",
        set_version=2,
        method="centroid",
        strategy="leave-one-out",
        n=9,
        accuracy=1.0,
        coverage=1.0,
    )
    store.record_evaluation(
        T2, "support", set_version=9, method="centroid", strategy="5-fold", n=1, accuracy=0.0, coverage=0.0
    )
    latest = store.latest_evaluations(T1)
    assert list(latest) == ["intents", "support"]
    assert latest["support"] == newest
    assert (newest.set_version, newest.method, newest.n, newest.answered_accuracy) == (4, "logreg", 42, 0.84)
    assert latest["intents"].answered_accuracy is None
