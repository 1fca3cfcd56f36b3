"""`core.store.Store` on SQLite and on PostgreSQL, always through the real migrations."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.errors import DatabaseUnavailable, InvalidInput, NotFound
from core.store import (
    AddResult,
    CacheKey,
    ExampleInput,
    SetSummary,
    Store,
    current_revision,
    head_revision,
    text_hash,
)
from core.store.db import make_engine
from core.store.schema import Embedding, Example, Label, LabelSet

T1, T2 = "T0001", "T0002"

EXAMPLES = [
    ExampleInput("bug", "The app crashes when I upload a file"),
    ExampleInput("bug", "Login button does nothing"),
    ExampleInput("feature", "Please add dark mode"),
    ExampleInput("question", "How do I reset my password?"),
]


def rows(store: Store, model: type[LabelSet | Label | Example | Embedding]) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def version(store: Store, set_name: str = "support", team: str = T1) -> int:
    return store.get_set(team, set_name).version


def on_every_worker(
    database_url: str, work: Callable[[int, Store], None], *, workers: int = 4
) -> list[BaseException]:
    """`work(n, store)` on `workers` stores of their own (as separate processes have), each on its
    own thread, let go at once; returns what they raised. The stores are closed afterwards."""
    stores = [Store.open(database_url) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(n: int, worker: Store) -> None:
        try:
            barrier.wait()
            work(n, worker)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in stores:
        w.close()
    return errors


# -- adding and listing --------------------------------------------------------------------------


def test_add_strips_and_lists_in_label_then_id_order(store: Store) -> None:
    result = store.add_examples(
        T1,
        "  support ",
        [
            ExampleInput(" question ", "  How do I export?\n", author="U123", source_url="https://x/p1"),
            ExampleInput("bug", "\tIt crashes\n"),
            ExampleInput("bug", "Login fails"),
        ],
    )
    assert (result.added, result.skipped, len(result.ids)) == (3, 0, 3)
    records = store.list_examples(T1, "support")
    assert [(r.label, r.text) for r in records] == [
        ("bug", "It crashes"),
        ("bug", "Login fails"),
        ("question", "How do I export?"),
    ]
    assert [r.id for r in records] == [result.ids[1], result.ids[2], result.ids[0]]
    question = records[2]
    assert (question.author, question.source_url) == ("U123", "https://x/p1")
    assert records[0].author is None and records[0].source_url is None
    assert [r.text for r in store.list_examples(T1, " support", label=" bug ")] == [
        "It crashes",
        "Login fails",
    ]


def test_timestamps_are_utc_aware(store: Store) -> None:
    before = datetime.now(UTC)
    store.add_examples(T1, "support", EXAMPLES[:1])
    (record,) = store.list_examples(T1, "support")
    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= record.created_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_duplicates_are_skipped_within_a_call_and_across_calls(store: Store) -> None:
    first = store.add_examples(
        T1,
        "support",
        [
            ExampleInput("bug", "It crashes"),
            ExampleInput("bug", "  It crashes  "),  # same once stripped
            ExampleInput("feature", "It crashes"),  # same text, other label: a different example
            ExampleInput("bug", "it crashes"),  # case matters
        ],
    )
    assert (first.added, first.skipped) == (3, 1)
    again = store.add_examples(
        T1, "support", [ExampleInput("bug", "It crashes\n"), ExampleInput("bug", "New")]
    )
    assert (again.added, again.skipped) == (1, 1)
    assert store.get_set(T1, "support").label_counts == {"bug": 3, "feature": 1}


def test_ids_of_added_examples_follow_input_order(store: Store) -> None:
    store.add_examples(T1, "support", [ExampleInput("b", "two")])
    result = store.add_examples(
        T1, "support", [ExampleInput("c", "one"), ExampleInput("b", "two"), ExampleInput("a", "three")]
    )
    assert (result.added, result.skipped) == (2, 1)
    by_id = {r.id: r.text for r in store.list_examples(T1, "support")}
    assert [by_id[i] for i in result.ids] == ["one", "three"]


def test_text_hash_is_sha256_of_the_stripped_text() -> None:
    assert text_hash("  héllo 👋\n") == text_hash("héllo 👋")
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_unicode_survives_the_round_trip(store: Store) -> None:
    store.add_examples(T1, "support", [ExampleInput("ラベル", "Ça plante 💥 — encore")])
    (record,) = store.list_examples(T1, "support")
    assert (record.label, record.text) == ("ラベル", "Ça plante 💥 — encore")


def test_adding_nothing_creates_nothing(store: Store) -> None:
    assert store.add_examples(T1, "support", []) == AddResult(added=0, skipped=0, ids=[])
    assert store.list_sets(T1) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ExampleInput("bug", "   \n"), "row 3 has no text"),
        (ExampleInput("  ", "some text"), "row 3 has no label"),
        (ExampleInput("x" * 201, "some text"), "row 3: the label name is longer than 200 characters"),
        (ExampleInput("bug", "nul \x00 byte"), "row 3: the text contains a NUL character"),
        (ExampleInput("bug", "text", author="a" * 201), "row 3: the author is longer than 200 characters"),
    ],
)
def test_one_bad_row_writes_nothing(store: Store, bad: ExampleInput, message: str) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    before = store.list_examples(T1, "support")
    items = [ExampleInput("bug", "brand new"), ExampleInput("new label", "also new"), bad]
    with pytest.raises(InvalidInput) as caught:
        store.add_examples(T1, "support", items)
    assert str(caught.value) == message
    assert store.list_examples(T1, "support") == before
    assert version(store) == 2
    # Nor is a new set created by a refused call.
    with pytest.raises(InvalidInput):
        store.add_examples(T1, "other", items)
    assert [s.name for s in store.list_sets(T1)] == ["support"]


def test_name_lengths(store: Store) -> None:
    store.add_examples(T1, "s" * 100, [ExampleInput("l" * 200, "text")])
    assert store.get_set(T1, "s" * 100).label_counts == {"l" * 200: 1}
    with pytest.raises(InvalidInput, match=r"^the label set name is longer than 100 characters$"):
        store.add_examples(T1, "s" * 101, [ExampleInput("bug", "text")])
    with pytest.raises(InvalidInput, match=r"^the label set name is empty$"):
        store.add_examples(T1, " ", [ExampleInput("bug", "text")])
    with pytest.raises(InvalidInput, match=r"^the workspace id is empty$"):
        store.add_examples("", "support", [ExampleInput("bug", "text")])


# -- versions -----------------------------------------------------------------------------------


def test_version_moves_with_every_change_and_only_then(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    assert version(store) == 2, "created at 1, then its first examples"
    store.add_examples(T1, "support", [ExampleInput("bug", "Yet another crash")])
    assert version(store) == 3
    store.add_examples(T1, "support", [ExampleInput("bug", "Yet another crash"), EXAMPLES[0]])
    assert version(store) == 3, "an add where everything is a duplicate changes nothing"
    first = store.list_examples(T1, "support")[0]
    store.remove_example(T1, "support", first.id)
    assert version(store) == 4
    store.remove_label(T1, "support", "feature")
    assert version(store) == 5
    store.add_examples(T1, "support", [ExampleInput("feature", "Export to CSV")])
    assert version(store) == 6


def test_concurrent_adds_each_bump_the_version(store: Store, database_url: str) -> None:
    store.add_examples(T1, "support", EXAMPLES)

    def add(n: int, worker: Store) -> None:
        for i in range(5):
            worker.add_examples(T1, "support", [ExampleInput("bug", f"crash {n}-{i}")])

    assert on_every_worker(database_url, add) == []
    summary = store.get_set(T1, "support")
    assert summary.label_counts["bug"] == 2 + 20
    assert summary.version == 2 + 20


def test_racing_to_create_the_same_set_and_examples(store: Store, database_url: str) -> None:
    # Every worker reads "no such set" and then tries to create it: the losers hit the unique
    # constraints and must retry into a plain duplicate-skip, not fail.
    results: list[AddResult] = []

    def add(n: int, worker: Store) -> None:
        results.append(worker.add_examples(T1, "fresh", EXAMPLES))

    assert on_every_worker(database_url, add) == []
    assert sorted(r.added for r in results) == [0, 0, 0, len(EXAMPLES)]
    assert store.get_set(T1, "fresh") == SetSummary("fresh", 2, {"bug": 2, "feature": 1, "question": 1})


# -- workspaces ----------------------------------------------------------------------------------


def test_workspaces_see_only_their_own_sets(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    store.add_examples(T2, "support", [ExampleInput("bug", "Only in team two")])
    assert [r.text for r in store.list_examples(T2, "support")] == ["Only in team two"]
    assert store.get_set(T1, "support").label_counts == {"bug": 2, "feature": 1, "question": 1}
    assert store.list_sets(T2) == [SetSummary("support", 2, {"bug": 1})]
    t1_example = store.list_examples(T1, "support")[0]
    with pytest.raises(NotFound):
        store.remove_example(T2, "support", t1_example.id)
    store.remove_set(T2, "support")
    assert store.list_sets(T2) == []
    assert len(store.list_examples(T1, "support")) == 4
    with pytest.raises(NotFound):
        store.training_data(T2, "support")


# -- not found -----------------------------------------------------------------------------------


def test_not_found_messages(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    store.add_examples(T1, "other", [ExampleInput("misc", "elsewhere")])
    other_id = store.list_examples(T1, "other")[0].id
    cases = [
        (lambda: store.list_examples(T1, "nope"), "no label set 'nope' in this workspace"),
        (lambda: store.get_set(T1, " nope "), "no label set 'nope' in this workspace"),
        (lambda: store.training_data(T1, "nope"), "no label set 'nope' in this workspace"),
        (lambda: store.remove_set(T1, "nope"), "no label set 'nope' in this workspace"),
        (lambda: store.remove_label(T1, "nope", "bug"), "no label set 'nope' in this workspace"),
        (lambda: store.list_examples(T1, "support", label="praise"), "no label 'praise' in set 'support'"),
        (lambda: store.remove_label(T1, "support", "praise"), "no label 'praise' in set 'support'"),
        (lambda: store.remove_example(T1, "support", 999_999), "no example #999999 in set 'support'"),
        # An example that exists, but in another set.
        (lambda: store.remove_example(T1, "support", other_id), f"no example #{other_id} in set 'support'"),
    ]
    for call, message in cases:
        with pytest.raises(NotFound) as caught:
            call()
        assert str(caught.value) == message
    assert version(store) == 2


# -- removing -----------------------------------------------------------------------------------


def test_remove_example_returns_it(store: Store) -> None:
    store.add_examples(
        T1, "support", [ExampleInput("bug", "It crashes", author="U1", source_url="https://x")]
    )
    (record,) = store.list_examples(T1, "support")
    assert store.remove_example(T1, "support", record.id) == record
    assert store.list_examples(T1, "support") == []
    # The label stays, now empty.
    assert store.get_set(T1, "support").label_counts == {"bug": 0}


def test_remove_label_cascades_to_its_examples(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    assert store.remove_label(T1, "support", " bug ") == 2
    assert rows(store, Example) == 2
    assert rows(store, Label) == 2
    assert store.get_set(T1, "support").label_counts == {"feature": 1, "question": 1}
    with pytest.raises(NotFound):
        store.list_examples(T1, "support", label="bug")


def test_remove_set_cascades_and_the_name_can_be_reused(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    store.add_examples(T1, "support", [ExampleInput("bug", "one more")])
    store.add_examples(T1, "keep", [ExampleInput("misc", "kept")])
    store.remove_set(T1, "support")
    assert (rows(store, LabelSet), rows(store, Label), rows(store, Example)) == (1, 1, 1)
    assert [s.name for s in store.list_sets(T1)] == ["keep"]
    store.add_examples(T1, "support", [ExampleInput("bug", "fresh start")])
    assert store.get_set(T1, "support") == SetSummary("support", 2, {"bug": 1})


# -- summaries and training data ---------------------------------------------------------------


def test_list_sets_orders_sets_and_labels_by_name(store: Store) -> None:
    store.add_examples(T1, "zeta", [ExampleInput("b", "1"), ExampleInput("a", "2"), ExampleInput("b", "3")])
    store.add_examples(T1, "alpha", [ExampleInput("only", "x")])
    sets = store.list_sets(T1)
    assert sets == [SetSummary("alpha", 2, {"only": 1}), SetSummary("zeta", 2, {"a": 1, "b": 2})]
    assert list(sets[1].label_counts) == ["a", "b"]
    assert store.list_sets("T-unknown") == []


def test_training_data_is_ordered_like_list_examples(store: Store) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    store.add_examples(T1, "support", [ExampleInput("bug", "Third bug")])
    data = store.training_data(T1, "support")
    records = store.list_examples(T1, "support")
    assert data.labels == [r.label for r in records] == ["bug", "bug", "bug", "feature", "question"]
    assert data.texts == [r.text for r in records]
    assert data.version == version(store) == 3


def test_first_examples_reads_only_the_first_of_each_label(store: Store) -> None:
    store.add_examples(T1, "support", [ExampleInput("bug", f"bug {i}") for i in range(6)])
    store.add_examples(
        T1, "support", [ExampleInput("feature", "one feature"), ExampleInput("idea", "an idea")]
    )
    store.remove_example(T1, "support", store.list_examples(T1, "support", label="idea")[0].id)
    store.add_examples(T2, "support", [ExampleInput("bug", "another workspace's bug")])
    first = store.first_examples(T1, "support", per_label=3)
    assert first.labels == ["bug", "bug", "bug", "feature"]
    assert first.texts == ["bug 0", "bug 1", "bug 2", "one feature"]
    assert first.version == store.training_data(T1, "support").version
    assert store.first_examples(T1, "support", per_label=0).texts == []
    with pytest.raises(NotFound):
        store.first_examples(T1, "nowhere", per_label=3)


def test_training_data_of_a_set_whose_labels_are_all_empty(store: Store) -> None:
    store.add_examples(T1, "support", [ExampleInput("bug", "only one")])
    store.remove_example(T1, "support", store.list_examples(T1, "support")[0].id)
    data = store.training_data(T1, "support")
    assert (data.version, data.labels, data.texts) == (3, [], [])


def test_training_data_is_one_snapshot_while_another_worker_writes(store: Store, database_url: str) -> None:
    store.add_examples(T1, "support", EXAMPLES)
    writer = Store.open(database_url)
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(30):
                writer.add_examples(T1, "support", [ExampleInput("bug", f"crash #{i}")])
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    snapshots = 0
    while not done.is_set() or snapshots == 0:
        data = store.training_data(T1, "support")
        # Every add here adds one example and bumps the version once: a snapshot mixing two
        # moments would break this equation.
        assert len(data.texts) == len(EXAMPLES) + data.version - 2
        snapshots += 1
    thread.join()
    writer.close()
    assert failures == []
    assert store.training_data(T1, "support").version == 32


# -- embedding cache -----------------------------------------------------------------------------

KEY = CacheKey("local", "all-MiniLM-L6-v2", "", 8)


def vectors_for(texts: list[str], dimensions: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {text_hash(t): rng.standard_normal(dimensions).astype(np.float32) for t in texts}


def test_vectors_round_trip_exactly(store: Store) -> None:
    vectors = vectors_for(["a", "b", "c"])
    odd = np.array([0.0, -0.0, 1e-45, -3.4028235e38, np.pi, 1 / 3, 7.0, -1e-8], dtype=np.float32)
    vectors[text_hash("odd")] = odd
    store.put_vectors(KEY, vectors)
    found = store.get_vectors(KEY, [*vectors, text_hash("missing")])
    assert set(found) == set(vectors)
    for hash_, vector in vectors.items():
        assert found[hash_].dtype == np.float32
        assert found[hash_].tobytes() == vector.tobytes()
    found[text_hash("odd")][0] = 5.0  # an ordinary writable array
    assert store.get_vectors(KEY, []) == {}


def test_vectors_in_more_than_one_chunk(store: Store) -> None:
    vectors = vectors_for([f"text {i}" for i in range(1203)])
    store.put_vectors(KEY, vectors)
    asked = [*vectors, *[text_hash(f"absent {i}") for i in range(300)], *list(vectors)[:10]]
    found = store.get_vectors(KEY, asked)
    assert len(found) == 1203
    assert all(np.array_equal(found[h], v) for h, v in vectors.items())


def test_putting_a_cached_hash_again_is_harmless(store: Store) -> None:
    original = vectors_for(["a", "b"], seed=1)
    store.put_vectors(KEY, original)
    replacement = vectors_for(["a", "b", "c"], seed=2)
    store.put_vectors(KEY, replacement)
    found = store.get_vectors(KEY, list(replacement))
    # First writer wins: the same model gives the same vector, so there is nothing to update.
    assert np.array_equal(found[text_hash("a")], original[text_hash("a")])
    assert np.array_equal(found[text_hash("c")], replacement[text_hash("c")])
    assert rows(store, Embedding) == 3


def test_concurrent_puts_of_the_same_vectors(store: Store, database_url: str) -> None:
    vectors = vectors_for([f"shared {i}" for i in range(600)])

    def put(n: int, worker: Store) -> None:
        worker.put_vectors(KEY, vectors)

    assert on_every_worker(database_url, put) == []
    assert rows(store, Embedding) == 600


@pytest.mark.parametrize(
    "other",
    [
        CacheKey("gemini", KEY.model, KEY.task_type, KEY.dimensions),
        CacheKey(KEY.embedder, "another-model", KEY.task_type, KEY.dimensions),
        CacheKey(KEY.embedder, KEY.model, "CLUSTERING", KEY.dimensions),
        CacheKey(KEY.embedder, KEY.model, KEY.task_type, 16),
    ],
    ids=["embedder", "model", "task_type", "dimensions"],
)
def test_each_part_of_the_key_separates_vectors(store: Store, other: CacheKey) -> None:
    store.put_vectors(KEY, vectors_for(["shared text"]))
    assert store.get_vectors(other, [text_hash("shared text")]) == {}
    store.put_vectors(other, vectors_for(["shared text"], dimensions=other.dimensions, seed=3))
    assert store.get_vectors(other, [text_hash("shared text")])[text_hash("shared text")].shape == (
        other.dimensions,
    )
    assert rows(store, Embedding) == 2


def test_put_refuses_wrong_shapes_and_non_hashes(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"has shape \(4,\), not \(8,\)"):
        store.put_vectors(KEY, {text_hash("a"): np.zeros(4, dtype=np.float32)})
    with pytest.raises(InvalidInput, match="is not a text hash"):
        store.put_vectors(KEY, {"raw text": np.zeros(8, dtype=np.float32)})
    assert rows(store, Embedding) == 0


# -- classification log ---------------------------------------------------------------------------


def test_classifications_are_logged_newest_first(store: Store) -> None:
    first = store.log_classification(
        team_id=T1,
        set_name="support",
        user_id="U1",
        source="slack",
        text="app crashed",
        label="bug",
        confidence=np.float64(0.875),
        method="centroid",
        scores={"bug": np.float64(0.9), "feature": 0.1},
    )
    second = store.log_classification(
        team_id=T1,
        set_name="support",
        user_id=None,
        source="cli",
        text="hmm",
        label=None,
        confidence=0.2,
        method="knn",
        scores={},
    )
    store.log_classification(
        team_id=T2,
        set_name="support",
        user_id=None,
        source="cli",
        text="other team",
        label="bug",
        confidence=1.0,
        method="knn",
        scores={"bug": 1.0},
    )
    newest, oldest = store.recent_classifications(T1)
    assert (newest.id, oldest.id) == (second, first)
    assert (newest.label, newest.user_id, newest.source, newest.scores) == (None, None, "cli", {})
    assert oldest.scores == {"bug": pytest.approx(0.9), "feature": pytest.approx(0.1)}
    assert (oldest.confidence, oldest.method, oldest.text, oldest.set_name) == (
        0.875,
        "centroid",
        "app crashed",
        "support",
    )
    assert oldest.created_at.utcoffset() == timedelta(0)
    assert [r.id for r in store.recent_classifications(T1, limit=1)] == [second]


def test_a_batch_of_classifications_is_logged_in_order(store: Store) -> None:
    ids = store.log_classifications(
        team_id=T1,
        set_name="support",
        user_id="U1",
        source="slack",
        results=[("one", "bug", 0.9, "centroid", {"bug": 0.9}), ("two\x00", None, 0.1, "centroid", {})],
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    assert [r.text for r in store.recent_classifications(T1)] == ["two\ufffd", "one"]
    assert store.log_classifications(team_id=T1, set_name="s", user_id=None, source="cli", results=[]) == []


def test_a_classification_is_read_back_by_id_within_its_workspace(store: Store) -> None:
    (logged,) = store.log_classifications(
        team_id=T1,
        set_name="support",
        user_id="U1",
        source="slack",
        results=[("app crashed", None, 0.4, "centroid", {"bug": 0.3, "feature": 0.2})],
    )
    found = store.get_classification(T1, logged)
    assert (found.id, found.text, found.label, found.set_name, found.user_id) == (
        logged,
        "app crashed",
        None,
        "support",
        "U1",
    )
    assert found.scores == {"bug": pytest.approx(0.3), "feature": pytest.approx(0.2)}
    with pytest.raises(NotFound, match=f"classification #{logged} is not on record"):
        store.get_classification(T2, logged)  # another workspace's log is not reachable
    with pytest.raises(NotFound):
        store.get_classification(T1, logged + 1000)


# -- opening -------------------------------------------------------------------------------------


def test_open_migrates_an_empty_database(empty_database_url: str) -> None:
    store = Store.open(empty_database_url)
    try:
        assert current_revision(store.engine) == head_revision()
        store.add_examples(T1, "support", EXAMPLES)
    finally:
        store.close()


def test_open_without_migrating_refuses_an_empty_database(empty_database_url: str) -> None:
    with pytest.raises(
        DatabaseUnavailable, match=r"^the database schema is out of date: run `gembot db upgrade`$"
    ):
        Store.open(empty_database_url, migrate=False)


def test_open_without_migrating_accepts_a_current_database(database_url: str) -> None:
    store = Store.open(database_url, migrate=False)
    assert store.list_sets(T1) == []
    store.close()


def unreachable_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return "postgresql+psycopg://postgres:s3cretpw@127.0.0.1:1/nope"
    return f"sqlite:///{tmp_path / 'no-such-directory' / 'gembot.db'}"


def test_unreachable_database(backend: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        Store.open(unreachable_url(backend, tmp_path))
    message = str(caught.value)
    assert "\n" not in message
    if backend == "postgres":
        assert "s3cretpw" not in message
        assert "postgresql+psycopg://postgres:***@127.0.0.1:1/nope" in message
    else:
        assert "no-such-directory does not exist" in message


def test_a_database_lost_after_opening(backend: str, tmp_path: Path) -> None:
    if backend == "postgres":
        # A Store built directly on an engine whose server is gone (nothing listens on port 1).
        store = Store(make_engine("postgresql://postgres:s3cretpw@127.0.0.1:1/gone"))
    else:
        directory = tmp_path / "gone"
        directory.mkdir()
        store = Store.open(f"sqlite:///{directory / 'gembot.db'}")
        store.close()
        shutil.rmtree(directory)
    with pytest.raises(DatabaseUnavailable) as caught:
        store.add_examples(T1, "support", EXAMPLES)
    assert "s3cretpw" not in str(caught.value)
    assert str(caught.value).startswith("cannot use the database ")
    store.close()
