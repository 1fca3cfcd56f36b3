"""BANKING77 accuracy of Gembot's classifiers on local MiniLM embeddings.

Trains on 3 and 10 examples per intent (drawn with seed 0) and on the full training set, with the
centroid classifier, logistic regression and "auto", and scores the 3,080 test queries: accuracy
of the most probable label, then coverage and accuracy on the answered queries at the abstention
thresholds (Settings defaults unless overridden). It also shows what temperature calibration does
to the centroid's confidence, and sweeps the two thresholds to help choose them.

    python benchmarks/banking77.py [--data ../shared/data/banking77] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.classify import train
from core.classify.model import TrainedModel
from core.embeddings.base import TaskType
from core.embeddings.local import LocalEmbedder
from core.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"
SHOTS: tuple[int | None, ...] = (3, 10, None)  # None: the full training set
METHODS = ("centroid", "logreg", "auto")
SWEEP_SIMILARITY = (0.0, 0.2, 0.3, 0.4, 0.5)
SWEEP_MARGIN = (0.0, 0.05, 0.1, 0.2, 0.3)

# Queries no banking intent covers: how often does min_similarity turn them away?
OUT_OF_DOMAIN = [
    "What's the weather going to be like tomorrow?",
    "Can you recommend a good pizza place nearby?",
    "How do I reset my router?",
    "Who won the football match last night?",
    "Play some relaxing music",
    "What's the capital of Australia?",
    "My cat keeps scratching the sofa, what should I do?",
    "Translate 'good morning' into Spanish",
    "How many calories are in a banana?",
    "Book me a table for two at 8pm",
    "What time does the train to Leeds leave?",
    "Tell me a joke",
    "How do I bake sourdough bread?",
    "Set an alarm for 6am",
    "Is it going to snow this weekend?",
    "What's a good movie to watch tonight?",
    "How tall is Mount Everest?",
    "My laptop screen is flickering",
    "Suggest a name for my new puppy",
    "When does the swimming pool open?",
]


@dataclass
class Row:
    shots: str
    method: str
    chosen: str
    accuracy: float
    coverage: float
    answered_accuracy: float | None
    train_seconds: float
    predict_seconds: float
    cv_scores: dict[str, float]


@dataclass
class Calibration:
    shots: str
    model: str
    temperature: float | None
    accuracy: float
    confidence_correct: float
    confidence_wrong: float
    ece: float


def load(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], np.array([row["category"] for row in rows])


def draw(labels: np.ndarray, shots: int | None) -> np.ndarray:
    """Row indices of `shots` random training examples per label (seed 0), or all of them."""
    if shots is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(0)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=shots, replace=False) for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Average |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def selective(
    model: TrainedModel, X: np.ndarray, truth: np.ndarray, *, min_similarity: float, min_margin: float
) -> tuple[float, float, float | None]:
    predictions = model.predict(X, min_similarity=min_similarity, min_margin=min_margin)
    best = np.array([p.best_label for p in predictions])
    answered = np.array([not p.abstained for p in predictions])
    correct = best == truth
    return (
        float(correct.mean()),
        float(answered.mean()),
        float(correct[answered].mean()) if answered.any() else None,
    )


def sweep(model: TrainedModel, X: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """Coverage and answered accuracy over a grid of thresholds, from the arrays directly."""
    cosines, probabilities = model.similarities(X), model.probabilities(X)
    top = np.sort(probabilities, axis=1)
    margin = top[:, -1] - top[:, -2]
    closest = cosines.max(axis=1)
    correct = np.array(model.labels)[probabilities.argmax(axis=1)] == truth
    grid = []
    for min_similarity in SWEEP_SIMILARITY:
        for min_margin in SWEEP_MARGIN:
            answered = (closest >= min_similarity) & (margin >= min_margin)
            grid.append(
                {
                    "min_similarity": min_similarity,
                    "min_margin": min_margin,
                    "coverage": float(answered.mean()),
                    "answered_accuracy": float(correct[answered].mean()) if answered.any() else None,
                }
            )
    return grid


def confidence_row(
    shots: str, name: str, model: TrainedModel, X: np.ndarray, truth: np.ndarray
) -> Calibration:
    probabilities = model.probabilities(X)
    confidence = probabilities.max(axis=1)
    correct = np.array(model.labels)[probabilities.argmax(axis=1)] == truth
    return Calibration(
        shots=shots,
        model=name,
        temperature=model.temperature,
        accuracy=float(correct.mean()),
        confidence_correct=float(confidence[correct].mean()),
        confidence_wrong=float(confidence[~correct].mean()) if (~correct).any() else float("nan"),
        ece=expected_calibration_error(confidence, correct),
    )


def percent(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--min-similarity", type=float, default=defaults.min_similarity)
    parser.add_argument("--min-margin", type=float, default=defaults.min_margin)
    args = parser.parse_args(argv)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    train_texts, train_labels = load(args.data / "train.csv")
    test_texts, test_labels = load(args.data / "test.csv")
    log(
        f"BANKING77: {len(train_texts)} training and {len(test_texts)} test texts, "
        f"{len(np.unique(train_labels))} intents"
    )

    embedder = LocalEmbedder()
    started = time.perf_counter()
    embedder.max_tokens  # noqa: B018 - loads the model, kept out of the embedding time
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    X_train = embedder.embed_batch(train_texts, task_type=TaskType.CLASSIFICATION)
    X_test = embedder.embed_batch(test_texts, task_type=TaskType.CLASSIFICATION)
    X_out = embedder.embed_batch(OUT_OF_DOMAIN, task_type=TaskType.CLASSIFICATION)
    embed_seconds = time.perf_counter() - started
    n_embedded = len(train_texts) + len(test_texts) + len(OUT_OF_DOMAIN)
    log(
        f"Embedding ({embedder.model}): model load {load_seconds:.1f} s, {n_embedded} texts in "
        f"{embed_seconds:.1f} s ({n_embedded / embed_seconds:.0f} texts/s)\n"
    )

    rows: list[Row] = []
    calibration: list[Calibration] = []
    sweeps: dict[str, list[dict[str, Any]]] = {}
    out_of_domain: list[dict[str, Any]] = []
    in_domain_closest: dict[str, list[float]] = {}
    for shots in SHOTS:
        shots_name = "full" if shots is None else str(shots)
        picked = draw(train_labels, shots)
        X, y = X_train[picked], list(train_labels[picked])
        models: dict[str, TrainedModel] = {}
        for method in METHODS:
            started = time.perf_counter()
            model = train(X, y, method=method)
            train_seconds = time.perf_counter() - started
            started = time.perf_counter()
            accuracy, coverage, answered = selective(
                model, X_test, test_labels, min_similarity=args.min_similarity, min_margin=args.min_margin
            )
            predict_seconds = time.perf_counter() - started
            models[method] = model
            rows.append(
                Row(
                    shots_name,
                    method,
                    model.method,
                    accuracy,
                    coverage,
                    answered,
                    train_seconds,
                    predict_seconds,
                    model.cv_scores,
                )
            )
            log(f"  {shots_name:>4} {method:<8} done: {100 * accuracy:.1f}% ({train_seconds:.1f} s)")

        plain = train(X, y, method="centroid", temperature=1.0)
        calibration += [
            confidence_row(shots_name, "centroid, calibrated T", models["centroid"], X_test, test_labels),
            confidence_row(shots_name, "centroid, plain softmax T=1", plain, X_test, test_labels),
            confidence_row(shots_name, "logistic regression", models["logreg"], X_test, test_labels),
        ]
        for method in ("centroid", "logreg"):
            sweeps[f"{shots_name}/{method}"] = sweep(models[method], X_test, test_labels)
        closest_out = models["centroid"].similarities(X_out).max(axis=1)
        closest_in = models["centroid"].similarities(X_test).max(axis=1)
        in_domain_closest[shots_name] = [float(q) for q in np.percentile(closest_in, [1, 5, 10, 50])]
        out_of_domain.append(
            {
                "shots": shots_name,
                "closest_cosine_max": float(closest_out.max()),
                "closest_cosine_median": float(np.median(closest_out)),
                "rejected_at_min_similarity": float((closest_out < args.min_similarity).mean()),
                "answered_by_logreg": float(
                    np.mean(
                        [
                            not p.abstained
                            for p in models["logreg"].predict(
                                X_out, min_similarity=args.min_similarity, min_margin=args.min_margin
                            )
                        ]
                    )
                ),
                "in_domain_closest_p1_p5_p10_p50": in_domain_closest[shots_name],
            }
        )

    if args.json:
        print(
            json.dumps(
                {
                    "data": str(args.data),
                    "embedder": embedder.model,
                    "embedding": {
                        "texts": n_embedded,
                        "seconds": embed_seconds,
                        "model_load_seconds": load_seconds,
                    },
                    "thresholds": {"min_similarity": args.min_similarity, "min_margin": args.min_margin},
                    "results": [asdict(r) for r in rows],
                    "calibration": [asdict(c) for c in calibration],
                    "out_of_domain": out_of_domain,
                    "sweep": sweeps,
                },
                indent=2,
            )
        )
        return 0

    print(
        f"\nTest accuracy, and abstention at min_similarity {args.min_similarity:.2f}, "
        f"min_margin {args.min_margin:.2f}"
    )
    print(
        f"{'shots':>5}  {'method':<9} {'chosen':<9} {'accuracy':>8}  {'coverage':>8}  "
        f"{'answered acc':>12}  {'train':>7}  {'predict':>7}"
    )
    for r in rows:
        print(
            f"{r.shots:>5}  {r.method:<9} {r.chosen:<9} {percent(r.accuracy):>8}  {percent(r.coverage):>8}  "
            f"{percent(r.answered_accuracy):>12}  {r.train_seconds:6.2f}s  {r.predict_seconds:6.2f}s"
        )
    print(
        "  (auto's cross-validated accuracies: "
        + "; ".join(
            f"{r.shots}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in r.cv_scores.items())
            for r in rows
            if r.method == "auto"
        )
        + ")"
    )

    print("\nConfidence (probability of the predicted label) on right vs wrong predictions")
    print(
        f"{'shots':>5}  {'model':<28} {'T':>6}  {'accuracy':>8}  {'conf. right':>11}  "
        f"{'conf. wrong':>11}  {'ECE':>6}"
    )
    for c in calibration:
        temperature = "-" if c.temperature is None else f"{c.temperature:.3f}"
        print(
            f"{c.shots:>5}  {c.model:<28} {temperature:>6}  {percent(c.accuracy):>8}  "
            f"{c.confidence_correct:11.3f}  {c.confidence_wrong:11.3f}  {c.ece:6.3f}"
        )

    print(
        f"\nOut-of-domain queries ({len(OUT_OF_DOMAIN)} non-banking questions) vs the test set, "
        "closest centroid cosine"
    )
    for o in out_of_domain:
        p1, p5, p10, p50 = o["in_domain_closest_p1_p5_p10_p50"]
        print(
            f"{o['shots']:>5}: out-of-domain median {o['closest_cosine_median']:.2f}, max "
            f"{o['closest_cosine_max']:.2f}, rejected {percent(o['rejected_at_min_similarity'])} "
            f"(logreg answers {percent(o['answered_by_logreg'])}); in-domain percentiles "
            f"1% {p1:.2f}, 5% {p5:.2f}, 10% {p10:.2f}, 50% {p50:.2f}"
        )

    print("\nThreshold sweep: coverage / answered accuracy (rows min_similarity, columns min_margin)")
    for name, grid in sweeps.items():
        print(f"  {name}")
        print("    sim\\margin " + "".join(f"{m:>16.2f}" for m in SWEEP_MARGIN))
        for s in SWEEP_SIMILARITY:
            cells = [g for g in grid if g["min_similarity"] == s]
            print(
                f"    {s:>10.2f} "
                + "".join(f"{percent(g['coverage']):>8}/{percent(g['answered_accuracy']):<7}" for g in cells)
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
