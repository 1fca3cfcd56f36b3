"""The engine over a real store: embedding cache, model cache keyed by set version, consistency."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from core.embeddings.base import TaskType
from core.engine import Engine
from core.settings import Settings
from core.store import ExampleInput, Store
from tests.support.fakes import BagOfWordsEmbedder

EXAMPLES = [
    ExampleInput("weather", "sunny skies and warm weather today"),
    ExampleInput("weather", "heavy rain and cold wind tonight"),
    ExampleInput("weather", "snow and cold weather tomorrow"),
    ExampleInput("sports", "the team won the football match"),
    ExampleInput("sports", "a great goal in the final match"),
    ExampleInput("sports", "the tennis player won the final"),
]


def engine_for(store: Store, embedder: BagOfWordsEmbedder | None = None, **settings: object) -> Engine:
    overrides: dict[str, object] = {"min_similarity": 0.0, "min_margin": 0.0, **settings}
    return Engine(
        store=store,
        embedder=embedder or BagOfWordsEmbedder(),
        settings=Settings(**overrides),
    )


def test_no_text_is_embedded_twice(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    embedder = BagOfWordsEmbedder()
    engine = engine_for(store, embedder)
    engine.classify("T1", "default", ["cold rain", "cold rain", "football final"])
    first = list(embedder.embedded)
    assert sorted(first) == sorted([e.text for e in EXAMPLES] + ["cold rain", "football final"])
    engine.classify("T1", "default", ["cold rain", "football final"])
    # A second engine (another process) on the same database reuses the stored vectors.
    engine_for(store, embedder).classify("T1", "default", ["football final", "sunny goal"])
    assert embedder.embedded == [*first, "sunny goal"]


def test_changing_dimensions_re_embeds_from_stored_texts(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    engine_for(store, BagOfWordsEmbedder(dimensions=64)).classify("T1", "default", ["cold rain"])
    wider = BagOfWordsEmbedder(dimensions=128)
    (p,) = engine_for(store, wider).classify("T1", "default", ["cold rain"])
    assert p.label == "weather"
    assert sorted(wider.embedded) == sorted([e.text for e in EXAMPLES] + ["cold rain"])


def test_task_type_is_part_of_the_key_only_when_the_model_uses_it(store: Store) -> None:
    blind = BagOfWordsEmbedder(uses_task_type=False)
    engine = engine_for(store, blind)
    engine.similarity(["one text", "another text"])
    engine.cluster(["one text", "another text", "third text"], k=2)
    assert blind.embedded == ["one text", "another text", "third text"]
    aware = BagOfWordsEmbedder(uses_task_type=True, model="aware")
    engine = engine_for(store, aware)
    engine.similarity(["one text", "another text"])
    engine.cluster(["one text", "another text"], k=2)
    assert [task for _, task in aware.calls] == [TaskType.SEMANTIC_SIMILARITY, TaskType.CLUSTERING]


def test_model_is_rebuilt_only_when_the_set_changes(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    worker_a, worker_b = engine_for(store), engine_for(store)
    model = worker_a.model_for("T1", "default", method="centroid")
    assert worker_a.model_for("T1", "default", method="centroid") is model
    # Worker B adds a label; worker A sees it at its next request.
    worker_b.store.add_examples(
        "T1",
        "default",
        [ExampleInput("food", "pizza and pasta for dinner"), ExampleInput("food", "fresh bread and cheese")],
    )
    rebuilt = worker_a.model_for("T1", "default", method="centroid")
    assert rebuilt is not model
    assert sorted(rebuilt.labels) == ["food", "sports", "weather"]
    (p,) = worker_a.classify("T1", "default", ["pasta and cheese for dinner"], method="centroid")
    assert p.label == "food"


def test_classifications_are_logged(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    engine_for(store).classify("T1", "default", ["cold snow"], user_id="U1", source="slack")
    (record,) = store.recent_classifications("T1")
    assert (record.user_id, record.source, record.text, record.label) == (
        "U1",
        "slack",
        "cold snow",
        "weather",
    )
    assert set(record.scores) == {"weather", "sports"}


def test_similarity_matrix_and_pairs(store: Store) -> None:
    result = engine_for(store).similarity(["red apple pie", "apple pie recipe", "stock market news"])
    assert result.matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(result.matrix), 1.0, atol=1e-5)
    assert (result.pairs[0].i, result.pairs[0].j) == (0, 1)


def test_empty_text_is_refused_before_anything_is_embedded(store: Store) -> None:
    from core.errors import InvalidInput

    embedder = BagOfWordsEmbedder()
    with pytest.raises(InvalidInput, match="text 2 is empty"):
        engine_for(store, embedder).similarity(["fine", "  "])
    assert embedder.calls == []


def test_a_burst_of_requests_trains_the_model_once(store: Store) -> None:
    import threading
    import time

    class Slow(BagOfWordsEmbedder):
        def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
            time.sleep(0.05)  # long enough for every thread to arrive while the first trains
            return super().embed_batch(texts, task_type=task_type)

    store.add_examples("T1", "default", EXAMPLES)
    embedder = Slow()
    engine = engine_for(store, embedder)
    barrier = threading.Barrier(8)
    models = []

    def request() -> None:
        barrier.wait()
        models.append(engine.model_for("T1", "default", method="centroid"))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 8 and all(m is models[0] for m in models)
    assert len(embedder.calls) == 1  # the examples, embedded once


def test_target_coverage_setting_reaches_the_model_and_the_evaluation(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    strict = engine_for(store, target_coverage=0.5)
    assert strict.model_for("T1", "default").target_coverage == 0.5
    assert strict.evaluate("T1", "default").target_coverage == 0.5
    assert engine_for(store).model_for("T1", "default").target_coverage == Settings().target_coverage


def test_a_set_removed_and_made_again_at_the_same_version_gets_a_new_model(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    engine = engine_for(store)
    before = engine.model_for("T1", "default")
    store.remove_set("T1", "default")
    store.add_examples(
        "T1",
        "default",
        [ExampleInput("fruit", "ripe apples and pears"), ExampleInput("tools", "a hammer and nails")],
    )
    assert store.get_set("T1", "default").version == 2
    # Same name, same version number; the model this process kept in memory must not answer.
    assert engine.model_for("T1", "default").labels == ["fruit", "tools"] != before.labels
    (p,) = engine.classify("T1", "default", ["apples"], log=False)
    assert p.best_label == "fruit"
