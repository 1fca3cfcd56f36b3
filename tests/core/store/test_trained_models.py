"""Fitted models kept in the database: the bytes round-trip, the store on SQLite and PostgreSQL,
and an engine that reads a kept model instead of fitting it again."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update

from core.classify import TrainedModel, train
from core.classify.model import MODEL_FORMAT, UnknownModelFormat
from core.engine import Engine
from core.settings import Settings
from core.store import CacheKey, ExampleInput, Store, TrainedModelKey, TrainingData, training_hash
from core.store.schema import TrainedModelRow
from tests.support.fakes import BagOfWordsEmbedder

# -- the bytes ------------------------------------------------------------------------------------


def clustered(
    rng: np.random.Generator, labels: int, per_label: int, dim: int = 24
) -> tuple[np.ndarray, list[str]]:
    centres = rng.normal(size=(labels, dim))
    X = np.vstack([centres[i] + 0.6 * rng.normal(size=(per_label, dim)) for i in range(labels)])
    return X, [f"label {i}" for i in range(labels) for _ in range(per_label)]


@pytest.mark.parametrize(
    ("method", "labels", "per_label", "fitted"),
    [
        ("centroid", 4, 6, "centroid"),
        ("logreg", 4, 6, "logreg"),
        ("logreg", 2, 6, "logreg"),  # binary logistic regression predicts by another path
        ("auto", 3, 1, "centroid"),  # a single example per label: no threshold, no cross-validation
        ("auto", 5, 30, None),
    ],
)
def test_a_model_read_back_from_its_bytes_answers_exactly_the_same(
    method: str, labels: int, per_label: int, fitted: str | None
) -> None:
    rng = np.random.default_rng(7)
    X, y = clustered(rng, labels, per_label)
    model = train(X, y, method=method, target_coverage=0.9)
    if fitted is not None:
        assert model.method == fitted
    restored = TrainedModel.from_bytes(model.to_bytes())
    queries = np.vstack([rng.normal(size=(40, X.shape[1])), X[:10] + 0.01])
    for attribute in ("method", "method_reason", "labels", "temperature", "cv_scores", "counts"):
        assert getattr(restored, attribute) == getattr(model, attribute), attribute
    assert (restored.dimensions, restored.threshold, restored.target_coverage, restored.calibration) == (
        model.dimensions,
        model.threshold,
        model.target_coverage,
        model.calibration,
    )
    assert np.array_equal(restored.probabilities(queries), model.probabilities(queries))
    assert np.array_equal(restored.nearest(queries), model.nearest(queries))
    for overrides in ({}, {"min_similarity": 0.3, "min_margin": 0.2}):
        assert restored.predict(queries, **overrides) == model.predict(queries, **overrides)
    answers = model.predict(queries, min_margin=0.2)
    # The comparison means something: some answered, some not sure.
    assert any(p.abstained for p in answers) and not all(p.abstained for p in answers)


def test_auto_keeps_its_choice_and_its_reason() -> None:
    rng = np.random.default_rng(3)
    X, y = clustered(rng, 5, 30)
    model = train(X, y, method="auto")
    restored = TrainedModel.from_bytes(model.to_bytes())
    assert model.cv_scores and restored.cv_scores == model.cv_scores
    assert restored.method_reason == model.method_reason and "cross-validation" in restored.method_reason


def rewritten(blob: bytes, **changes: Any) -> bytes:
    """The same model's bytes with fields of its JSON part changed."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes()) | changes
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_bytes_of_another_format_or_damaged_are_refused_not_misread() -> None:
    X, y = clustered(np.random.default_rng(1), 3, 5)
    blob = train(X, y, method="logreg").to_bytes()
    assert TrainedModel.from_bytes(rewritten(blob))  # the rewriting itself keeps a readable model
    with pytest.raises(UnknownModelFormat, match="format 2"):
        TrainedModel.from_bytes(rewritten(blob, format=MODEL_FORMAT + 1))
    with pytest.raises(UnknownModelFormat):
        TrainedModel.from_bytes(rewritten(blob, labels=["a", "b"]))
    for damaged in (b"", b"not a model", blob[: len(blob) // 2]):
        with pytest.raises(UnknownModelFormat):
            TrainedModel.from_bytes(damaged)


def test_the_bytes_hold_no_pickle() -> None:
    X, y = clustered(np.random.default_rng(2), 4, 8)
    blob = train(X, y, method="auto").to_bytes()
    # np.load refuses object arrays (the only way an .npz holds a pickle) when pickles are off.
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


# -- the store ------------------------------------------------------------------------------------

EMBEDDING = CacheKey("bag-of-words", "bow-64", "classification", 64)
TWO = [ExampleInput("a", "first"), ExampleInput("b", "second")]


def key_for(store: Store, team: str = "T1", name: str = "support", **changes: Any) -> TrainedModelKey:
    data = store.training_data(team, name)
    key = TrainedModelKey(
        team_id=team,
        set_name=name,
        set_version=data.version,
        data_hash=training_hash(data),
        method="auto",
        embedding=EMBEDDING,
        temperature=None,
        target_coverage=0.98,
    )
    return dataclasses.replace(key, **changes)


def kept_rows(store: Store) -> list[tuple[str, str, int]]:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(TrainedModelRow.team_id, TrainedModelRow.set_name, TrainedModelRow.set_version)
        ).all()
    return sorted((str(t), str(s), int(v)) for t, s, v in found)


def test_a_model_is_kept_and_read_back_by_its_whole_key(store: Store) -> None:
    store.add_examples("T1", "support", TWO)
    key = key_for(store)
    assert store.trained_model(key, format=1) is None
    assert store.save_trained_model(key, b"model bytes", format=1) is True
    assert store.trained_model(key, format=1) == b"model bytes"
    assert store.trained_model(dataclasses.replace(key, team_id=" T1 ", set_name="support "), format=1)
    variants: list[tuple[str, Any]] = [
        ("team_id", "T2"),
        ("set_name", "sales"),
        ("set_version", key.set_version + 1),
        ("data_hash", "0" * 64),
        ("method", "logreg"),
        ("embedding", dataclasses.replace(EMBEDDING, dimensions=128)),
        ("embedding", dataclasses.replace(EMBEDDING, model="bow-other")),
        ("embedding", dataclasses.replace(EMBEDDING, task_type="")),
        ("temperature", 0.05),
        ("target_coverage", 0.9),
    ]
    for part, other in variants:
        assert store.trained_model(dataclasses.replace(key, **{part: other}), format=1) is None, part
    # Another format number is never handed back.
    assert store.trained_model(key, format=2) is None


def test_saving_again_replaces_the_model(store: Store) -> None:
    store.add_examples("T1", "support", TWO)
    key = key_for(store)
    store.save_trained_model(key, b"first", format=1)
    store.save_trained_model(key, b"second", format=1)
    assert store.trained_model(key, format=1) == b"second"
    assert len(kept_rows(store)) == 1


def test_a_new_version_forgets_the_old_ones_and_a_stale_fit_is_not_kept(store: Store) -> None:
    store.add_examples("T1", "support", TWO)
    store.add_examples("T1", "sales", TWO)
    old = key_for(store)
    store.save_trained_model(old, b"old", format=1)
    store.save_trained_model(key_for(store, name="sales"), b"sales", format=1)
    store.add_examples("T1", "support", [ExampleInput("a", "third")])
    new = key_for(store)
    assert new.set_version > old.set_version
    # A fit of the version the set has left (another process was slower) is not kept.
    assert store.save_trained_model(old, b"old again", format=1) is False
    assert store.save_trained_model(new, b"new", format=1) is True
    assert store.trained_model(old, format=1) is None
    assert kept_rows(store) == [("T1", "sales", old.set_version), ("T1", "support", new.set_version)]


def test_a_removed_set_loses_its_models_and_its_successor_never_sees_them(store: Store) -> None:
    store.add_examples("T1", "support", TWO)
    store.add_examples("T1", "sales", TWO)
    store.add_examples("T2", "support", TWO)
    for team, name in [("T1", "support"), ("T1", "sales"), ("T2", "support")]:
        store.save_trained_model(key_for(store, team, name), b"kept", format=1)
    old = key_for(store)
    store.remove_set("T1", "support")
    # Created again under the same name, with other examples, at the version the old one had.
    store.add_examples("T1", "support", [ExampleInput("a", "other"), ExampleInput("b", "examples")])
    again = key_for(store)
    assert again.set_version == old.set_version and again.data_hash != old.data_hash
    assert store.trained_model(again, format=1) is None
    # The next save in the workspace forgets the removed sets' models, not other workspaces'.
    store.remove_set("T1", "support")
    store.save_trained_model(key_for(store, name="sales"), b"kept", format=1)
    assert kept_rows(store) == [("T1", "sales", old.set_version), ("T2", "support", old.set_version)]


def test_training_hash_follows_the_examples_and_their_labels() -> None:
    data = TrainingData(version=3, labels=["a", "b"], texts=["x", "y"])
    assert training_hash(data) == training_hash(dataclasses.replace(data, version=4))
    assert training_hash(data) != training_hash(dataclasses.replace(data, labels=["b", "a"]))
    assert training_hash(data) != training_hash(dataclasses.replace(data, texts=["x", "z"]))
    # No two examples can run together into the same bytes.
    assert training_hash(TrainingData(1, ["a"], ["b c"])) != training_hash(TrainingData(1, ["a b"], ["c"]))


# -- the engine -----------------------------------------------------------------------------------

EXAMPLES = [
    ExampleInput("weather", "sunny skies and warm weather today"),
    ExampleInput("weather", "heavy rain and cold wind tonight"),
    ExampleInput("weather", "snow and cold weather tomorrow"),
    ExampleInput("sports", "the team won the football match"),
    ExampleInput("sports", "a great goal in the final match"),
    ExampleInput("sports", "the tennis player won the final"),
]
QUERIES = ["cold rain tonight", "football final", "a quiet afternoon"]


class CountingTrainer:
    """`core.classify.train`, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, X: np.ndarray, y: Sequence[str], **options: Any) -> TrainedModel:
        self.calls += 1
        return train(X, y, **options)


def engine_for(store: Store, trainer: CountingTrainer, **settings: Any) -> Engine:
    return Engine(
        store=store,
        embedder=BagOfWordsEmbedder(),
        settings=Settings(**settings),
        trainer=trainer,
    )


def test_a_second_engine_reads_the_kept_model_instead_of_fitting_it(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    trainer = CountingTrainer()
    first = engine_for(store, trainer).classify("T1", "default", QUERIES, log=False)
    assert trainer.calls == 1
    # Another process: nothing in memory, the same database.
    second = engine_for(store, trainer).classify("T1", "default", QUERIES, log=False)
    assert trainer.calls == 1
    assert second == first
    # Each method is its own fit, and is kept too.
    engine_for(store, trainer).model_for("T1", "default", method="logreg")
    engine_for(store, trainer).model_for("T1", "default", method="logreg")
    assert trainer.calls == 2


def test_what_the_fit_depends_on_gets_its_own_model(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    trainer = CountingTrainer()
    engine_for(store, trainer).model_for("T1", "default")
    engine_for(store, trainer, target_coverage=0.8).model_for("T1", "default")
    engine_for(store, trainer, temperature=0.1).model_for("T1", "default")
    assert trainer.calls == 3
    # The overrides apply when predicting: the kept model serves them.
    engine_for(store, trainer, min_similarity=0.5, min_margin=0.3).model_for("T1", "default")
    assert trainer.calls == 3


def test_a_new_set_version_is_fitted_again_and_the_old_model_goes(store: Store) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    trainer = CountingTrainer()
    engine_for(store, trainer).model_for("T1", "default")
    old_version = store.get_set("T1", "default").version
    store.add_examples("T1", "default", [ExampleInput("sports", "a close race on the track")])
    model = engine_for(store, trainer).model_for("T1", "default")
    assert trainer.calls == 2
    assert model.counts == {"sports": 4, "weather": 3}
    assert kept_rows(store) == [("T1", "default", old_version + 1)]


def test_a_kept_model_of_an_unknown_format_is_fitted_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.add_examples("T1", "default", EXAMPLES)
    trainer = CountingTrainer()
    engine_for(store, trainer).model_for("T1", "default")
    with store.engine.begin() as conn:
        blob = conn.execute(select(TrainedModelRow.model)).scalar_one()
        conn.execute(update(TrainedModelRow).values(model=rewritten(blob, format=MODEL_FORMAT + 1)))
    with caplog.at_level(logging.WARNING, logger="core.engine"):
        model = engine_for(store, trainer).model_for("T1", "default")
    assert trainer.calls == 2 and model.labels == ["sports", "weather"]
    assert "cannot be read" in caplog.text
    # The fresh fit replaced the unreadable one.
    engine_for(store, trainer).model_for("T1", "default")
    assert trainer.calls == 2


def test_a_failing_save_does_not_fail_the_classification(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.add_examples("T1", "default", EXAMPLES)

    def refuse(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "save_trained_model", refuse)
    trainer = CountingTrainer()
    with caplog.at_level(logging.WARNING, logger="core.engine"):
        (p, *_) = engine_for(store, trainer).classify("T1", "default", QUERIES, log=False)
    assert p.label == "weather"
    assert [r.getMessage() for r in caplog.records] == [
        "could not keep the fitted model of set 'default': disk full"
    ]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TrainedModelRow)).scalar_one() == 0


def test_concurrent_saves_of_the_same_model(store: Store, database_url: str) -> None:
    # Two workers fitted the same set at once: both save, neither fails, one row is kept.
    store.add_examples("T1", "support", TWO)
    store.add_examples("T1", "sales", TWO)
    key = key_for(store)
    stores = [Store.open(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def save(mine: Store, name: str) -> None:
        try:
            barrier.wait()
            mine.save_trained_model(dataclasses.replace(key, set_name=name), b"fitted", format=1)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=save, args=(s, "support" if i % 2 else "sales")) for i, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert errors == [] and [name for _, name, _ in kept_rows(store)] == ["sales", "support"]


def test_removing_a_set_removes_its_kept_models_and_gemini_answers(store: Store) -> None:
    from core.store import EscalationKey, text_hash
    from core.store.schema import Escalation

    store.add_examples("T1", "support", TWO)
    store.add_examples("T1", "other", TWO)
    for name in ("support", "other"):
        assert store.save_trained_model(key_for(store, name=name), b"model", format=1)
        version = store.get_set("T1", name).version
        question = EscalationKey("T1", name, version, "gemini-2.5-flash", text_hash("where is my card"))
        store.save_escalation(question, prompt_hash=text_hash("prompt"), label="a")
    store.remove_set("T1", "support")
    with store.engine.connect() as conn:
        answers = conn.execute(select(Escalation.set_name)).scalars().all()
    assert answers == ["other"]
    assert [name for _, name, _ in kept_rows(store)] == ["other"]
