"""The Store's Slack tables on SQLite and PostgreSQL: request claims, thread conversations, evaluations."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from core.errors import InvalidInput
from core.store import Store
from core.store.deliveries import Claim

T1, T2 = "T0001", "T0002"


LEASE = timedelta(seconds=30)
LAPSED = timedelta(seconds=-1)  # a lease already over: the process holding it has stopped


def claim(
    store: Store, key: str, *, team: str = T1, lease: timedelta = LEASE, payload: object = None
) -> Claim:
    body = {"event_id": key, "text": "hello"} if payload is None else payload
    assert isinstance(body, dict)
    return store.deliveries.claim(key, team_id=team, payload=body, lease=lease)


def test_a_request_is_claimed_once(store: Store) -> None:
    assert claim(store, "Ev001") is Claim.NEW
    assert claim(store, "Ev001") is Claim.TAKEN  # held by the first
    assert claim(store, "Ev001", team=T2) is Claim.TAKEN  # event ids are unique across workspaces
    assert claim(store, "Ev002") is Claim.NEW
    store.deliveries.finish(["Ev001"])
    assert claim(store, "Ev001") is Claim.TAKEN  # finished: a redelivery is dropped


def test_claims_survive_reopening_the_database(database_url: str) -> None:
    first = Store.open(database_url)
    try:
        assert claim(first, "EvRestart") is Claim.NEW
    finally:
        first.close()
    second = Store.open(database_url)
    try:
        assert claim(second, "EvRestart") is Claim.TAKEN
    finally:
        second.close()


def test_racing_claims_have_exactly_one_winner(database_url: str) -> None:
    # Separate stores stand for separate worker processes, each with its own connection pool.
    stores = [Store.open(database_url, migrate=False) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    results: list[Claim] = []
    errors: list[BaseException] = []

    def race(store: Store) -> None:
        try:
            barrier.wait()
            results.append(claim(store, "EvRace"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert sorted(r.value for r in results) == ["new"] + ["taken"] * 5


def test_a_lapsed_unfinished_claim_is_taken_over_once(database_url: str) -> None:
    stores = [Store.open(database_url, migrate=False) for _ in range(4)]
    try:
        assert claim(stores[0], "EvDead", lease=LAPSED, payload={"event_id": "EvDead", "n": 1}) is Claim.NEW
        # A redelivery takes it over; a second one finds it held again.
        assert claim(stores[1], "EvDead") is Claim.RETAKEN
        assert claim(stores[2], "EvDead") is Claim.TAKEN

        assert (
            claim(stores[0], "EvOrphan", lease=LAPSED, payload={"event_id": "EvOrphan", "n": 2}) is Claim.NEW
        )
        taken = [a for s in stores for a in s.deliveries.take_abandoned(lease=LEASE, max_attempts=2, limit=5)]
        assert [(a.key, a.team_id, a.attempts, a.payload) for a in taken] == [
            ("EvOrphan", T1, 2, {"event_id": "EvOrphan", "n": 2})
        ]
    finally:
        for s in stores:
            s.close()


def test_an_abandoned_request_is_tried_at_most_max_attempts_times(store: Store) -> None:
    claim(store, "EvPoison", lease=LAPSED)
    (again,) = store.deliveries.take_abandoned(lease=LAPSED, max_attempts=2, limit=5)
    assert again.attempts == 2
    assert store.deliveries.take_abandoned(lease=LEASE, max_attempts=2, limit=5) == []
    assert store.deliveries.give_up(max_attempts=2) == ["EvPoison"]
    assert store.deliveries.give_up(max_attempts=2) == []
    assert claim(store, "EvPoison") is Claim.TAKEN


def test_renewed_and_finished_claims_are_not_taken_over(store: Store) -> None:
    claim(store, "EvBusy", lease=LAPSED)
    claim(store, "EvDone", lease=LAPSED)
    store.deliveries.renew(["EvBusy"], LEASE)
    store.deliveries.finish(["EvDone"])
    assert store.deliveries.take_abandoned(lease=LEASE, max_attempts=2, limit=5) == []
    assert claim(store, "EvDone") is Claim.TAKEN


def test_finishing_drops_the_stored_request(store: Store) -> None:
    claim(store, "EvSecretish", payload={"event_id": "EvSecretish", "response_url": "https://hooks/x"})
    store.deliveries.finish(["EvSecretish"])
    with store.engine.connect() as conn:
        payload, finished = conn.execute(
            text("SELECT payload, finished_at FROM slack_events WHERE event_id = 'EvSecretish'")
        ).one()
    assert payload is None and finished is not None


def test_pruning_forgets_old_claims_only(store: Store) -> None:
    claim(store, "EvOld")
    assert store.deliveries.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.deliveries.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert claim(store, "EvOld") is Claim.NEW
    with pytest.raises(InvalidInput):
        store.deliveries.prune(datetime.now())  # naive


def test_a_conversation_keeps_turns_in_order_with_their_images(store: Store) -> None:
    png, jpeg = b"\x89PNG fake bytes", b"\xff\xd8\xff fake jpeg"
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
        ece=0.031,
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
    assert (newest.ece, latest["intents"].ece) == (0.031, None)  # kept; None when not measured
