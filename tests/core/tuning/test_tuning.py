"""`gembot tune`: a set's own embedder, judged on held-out examples, kept for all workers, then used."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

from core.classify import train
from core.classify.abstention import conformal_threshold, held_out_nearest_similarity
from core.embeddings.base import TaskType
from core.embeddings.cache import CachedEmbedder
from core.embeddings.tuned import (
    TUNED_FORMAT,
    AdaptedEmbeddings,
    TunedWeights,
    UnknownTunedFormat,
    seen_mask,
    seen_tensor,
)
from core.engine import Engine
from core.settings import Settings
from core.store import ExampleInput, Store, TunedEncoderInput
from core.tuning.adapter import tune_adapter
from core.tuning.holdout import split
from tests.core.test_engine import EXAMPLES
from tests.support.cli_support import CLI, on_database
from tests.support.fakes import BagOfWordsEmbedder

INTENTS = Path(__file__).resolve().parents[3] / "core" / "examples" / "intents.csv"


def hard_set(seed: int = 0) -> list[ExampleInput]:
    """Six labels, each marked by one word among sixteen shared distractors: the plain bag of words
    is misled by the distractors, an adapter that whitens them away is not."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(40)]
    return [
        ExampleInput(label, " ".join([f"key{label}", *rng.sample(vocabulary, 16)]))
        for label in "abcdef"
        for _ in range(10)
    ]


EASY = EXAMPLES


def engine_for(store: Store, dimensions: int = 256) -> Engine:
    return Engine(store=store, embedder=BagOfWordsEmbedder(dimensions=dimensions), settings=Settings())


# -- the weights ----------------------------------------------------------------------------------


def test_weights_come_back_from_their_bytes_and_damaged_ones_are_refused() -> None:
    weights = TunedWeights(
        kind="adapter",
        base="fake/bag-of-words/4",
        tensors={"matrix": np.eye(4, dtype=np.float32), "shift": np.arange(4, dtype=np.float32)},
        details={"steps": 3},
    )
    back = TunedWeights.from_bytes(weights.to_bytes())
    assert (back.kind, back.base, back.details) == ("adapter", "fake/bag-of-words/4", {"steps": 3})
    assert np.array_equal(back.tensors["shift"], weights.tensors["shift"])
    blob = weights.to_bytes()
    with pytest.raises(UnknownTunedFormat):
        TunedWeights.from_bytes(blob[: len(blob) // 2])
    with pytest.raises(UnknownTunedFormat):
        TunedWeights.from_bytes(b"PK\x03\x04 not a safetensors file")
    # Another format number is refused rather than misread.
    header = blob.replace(f'"format": {TUNED_FORMAT}'.encode(), f'"format": {TUNED_FORMAT + 1}'.encode())
    assert header != blob
    with pytest.raises(UnknownTunedFormat, match="format"):
        TunedWeights.from_bytes(header)


def test_the_weights_know_which_texts_they_were_trained_on() -> None:
    weights = TunedWeights("adapter", "x", {"trained_on": seen_tensor(["a", "b "])})
    assert seen_mask(weights, ["b", "c", "a"]).tolist() == [True, False, True]


def test_the_held_out_share_is_taken_from_every_label_and_leaves_two_to_train_on() -> None:
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 2 + ["d"] * 50
    training, held = split(labels, seed=1)
    names = np.array(labels)
    assert sorted(np.concatenate([training, held]).tolist()) == list(range(len(labels)))
    assert {label: int((names[held] == label).sum()) for label in "abcd"} == {"a": 2, "b": 1, "c": 0, "d": 10}


# -- calibration on what the encoder has not seen -------------------------------------------------


def test_examples_the_encoder_trained_on_do_not_set_the_threshold() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    labels = [str(c) for c in range(3) for _ in range(20)]
    noise = np.where(np.arange(60)[:, None] % 20 < 10, 0.05, 0.6)  # ten tight (seen), ten loose each
    X = centres[np.repeat(np.arange(3), 20)] + noise * rng.normal(size=(60, 16))
    seen = np.arange(60) % 20 < 10
    plain = train(X, labels, method="centroid")
    judged = train(X, labels, method="centroid", seen=seen)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = conformal_threshold(held_out_nearest_similarity(unit.astype(np.float32))[~seen], 0.98)
    assert judged.threshold == pytest.approx(expected)
    assert plain.threshold is not None and judged.threshold is not None
    assert judged.threshold < plain.threshold - 0.01


# -- the engine: judged, kept, used, replaced -----------------------------------------------------


def test_a_tune_that_beats_the_plain_model_is_kept_and_every_worker_uses_it(store: Store) -> None:
    store.add_examples("T1", "hard", hard_set())
    engine = engine_for(store)
    plain_key = engine.embeddings_for("T1", "hard").key(TaskType.CLASSIFICATION)
    outcome = engine.tune("T1", "hard", kind="adapter")
    assert outcome.verdict.held_out == 12
    assert outcome.verdict.tuned_accuracy > outcome.verdict.plain_accuracy
    assert outcome.kept and outcome.examples == 48
    info = store.tuned_encoder("T1", "hard")
    assert info is not None and (info.kind, info.set_version, info.examples) == (
        "adapter",
        outcome.set_version,
        48,
    )

    # Another process on the same database finds the weights and classifies through them.
    other = engine_for(store)
    used = other.embeddings_for("T1", "hard")
    assert isinstance(used, AdaptedEmbeddings)
    assert used.key(TaskType.CLASSIFICATION) != plain_key
    text = "keyc " + " ".join(f"w{i}" for i in range(16))
    (tuned_answer,) = other.classify("T1", "hard", [text], log=False)
    assert tuned_answer.best_label == "c"
    model = other.model_for("T1", "hard")
    # The head was calibrated on the twelve examples the adapter never saw.
    unseen = ~seen_mask(used.weights, store.training_data("T1", "hard").texts)
    assert int(unseen.sum()) == 12
    assert model.threshold is not None

    # An edit: the tuned weights keep serving, with a head refitted on the edited examples, and
    # a re-tune is asked for.
    store.add_examples("T1", "hard", [ExampleInput("g", "keyg w1 w2 w3 w4")])
    assert isinstance(other.embeddings_for("T1", "hard"), AdaptedEmbeddings)
    assert "g" in other.model_for("T1", "hard").labels
    assert [job.set_name for job in store.tune_jobs("T1")] == ["hard"]


def test_a_tune_no_better_than_plain_is_not_used_and_drops_older_weights(store: Store) -> None:
    store.add_examples("T1", "easy", EASY * 1)
    engine = engine_for(store, dimensions=64)
    old = tune_adapter(
        np.eye(6, 64, dtype=np.float32) + 0.1,
        [e.label for e in EASY],
        base="fake/bag-of-words/64",
        texts=[e.text for e in EASY],
    )
    version = store.get_set("T1", "easy").version
    entry = TunedEncoderInput("T1", "easy", version, old.base, "adapter", TUNED_FORMAT, 6, 0.1)
    assert store.save_tuned_encoder(entry, old.to_bytes())
    assert isinstance(engine.embeddings_for("T1", "easy"), AdaptedEmbeddings)
    outcome = engine.tune("T1", "easy", kind="adapter")
    assert not outcome.kept
    assert outcome.verdict.tuned_accuracy <= outcome.verdict.plain_accuracy
    assert store.tuned_encoder("T1", "easy") is None
    assert isinstance(engine.embeddings_for("T1", "easy"), CachedEmbedder)


def test_weights_for_another_embedder_or_damaged_ones_leave_the_set_untuned(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.add_examples("T1", "hard", hard_set())
    assert engine_for(store).tune("T1", "hard", kind="adapter").kept
    # The configured embedder changed (other dimensions): the weights do not fit it.
    narrower = engine_for(store, dimensions=128)
    assert isinstance(narrower.embeddings_for("T1", "hard"), CachedEmbedder)
    info = store.tuned_encoder("T1", "hard")
    assert info is not None and engine_for(store).serves(info) and not narrower.serves(info)
    version = store.get_set("T1", "hard").version
    damaged = TunedEncoderInput(
        "T1", "hard", version, "fake/bag-of-words/256", "adapter", TUNED_FORMAT, 1, 0.0
    )
    assert store.save_tuned_encoder(damaged, b"\x00" * 64)
    fresh = engine_for(store)
    assert isinstance(fresh.embeddings_for("T1", "hard"), CachedEmbedder)
    assert "cannot be used" in caplog.text
    (answer,) = fresh.classify("T1", "hard", ["keya w1"], log=False)
    assert answer.best_label in "abcdef"


def test_the_local_model_cannot_take_an_encoder_tune_from_another_embedder(store: Store) -> None:
    store.add_examples("T1", "hard", hard_set())
    with pytest.raises(Exception, match="only the local model can be fine-tuned"):
        engine_for(store).tune("T1", "hard", kind="encoder")


# -- the local model, fine-tuned for real, through the command line ------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CLI:
    # SQLite only: the store's two backends are covered above; this is about the model.
    url = f"sqlite:///{tmp_path / 'gembot.db'}"
    return on_database(url, tmp_path, monkeypatch, capsys, GEMBOT_TUNE_BUDGET="6")


def test_gembot_tune_fine_tunes_minilm_and_reports_its_verdict(cli: CLI, tmp_path: Path) -> None:
    assert cli("labels", "import", str(INTENTS)).code == 0
    run = cli("tune", "--json", "--quiet")
    assert run.code == 0, run.err
    (report,) = run.json_lines()
    assert report["kind"] == "encoder" and report["set"] == "default"
    assert report["held_out"] > 0 and 0 <= report["tuned_accuracy"] <= 1
    assert report["details"]["steps"] >= 5
    assert report["details"]["seconds"] < 60
    store = Store.open(f"sqlite:///{tmp_path / 'gembot.db'}")
    try:
        info = store.tuned_encoder("local", "default")
        assert (info is not None) == report["used"]
        if info is not None:
            # The weights are the layers training changed, not the whole 90 MB model.
            blob = store.tuned_encoder_blob("local", "default", info.digest)
            assert blob is not None and len(blob) < 40_000_000
    finally:
        store.close()
    classified = cli("classify", "--json", "Please restart the build server tonight.")
    assert classified.code == 0 and classified.json_lines()[0]["label"] == "instruction"


def test_tuning_a_set_that_does_not_exist_is_one_line(cli: CLI) -> None:
    run = cli("tune", "--set", "nowhere")
    assert run.code == 1
    assert run.err.strip().count("\n") == 0 and "nowhere" in run.err


def test_a_fine_tuned_encoder_changes_the_vectors_and_survives_its_bytes() -> None:
    from core.embeddings.local import LocalEmbedder
    from core.embeddings.tuned import TunedLocalEmbedder, digest
    from core.tuning.encoder import EncoderPlan, tune_encoder

    texts = [e.text for e in EASY] * 2
    labels = [e.label for e in EASY] * 2
    base = LocalEmbedder()
    weights = tune_encoder(
        base, texts, labels, plan=EncoderPlan(min_steps=8, max_steps=8, learning_rate=1e-3)
    )
    assert weights.details["steps"] == 8
    blob = weights.to_bytes()
    tuned = TunedLocalEmbedder(base, TunedWeights.from_bytes(blob), digest(blob))
    before = base.embed_batch(["a cold and rainy night"], task_type=TaskType.CLASSIFICATION)
    after = tuned.embed_batch(["a cold and rainy night"], task_type=TaskType.CLASSIFICATION)
    assert float(before[0] @ after[0]) < 0.9999
    assert np.allclose(np.linalg.norm(after, axis=1), 1, atol=1e-5)
    # The base model is untouched by the tune.
    assert np.allclose(
        before, base.embed_batch(["a cold and rainy night"], task_type=TaskType.CLASSIFICATION)
    )
    stranger = dataclasses.replace(weights, tensors={**weights.tensors, "no.such.layer": np.zeros(3)})
    with pytest.raises(UnknownTunedFormat):
        TunedLocalEmbedder(base, stranger, "0" * 64)
    assert json.dumps(weights.details)
