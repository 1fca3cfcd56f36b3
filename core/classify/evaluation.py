"""How well a method classifies a label set's own examples, each predicted by a model that never saw it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold

from core.classify.centroid import encode_labels
from core.classify.confidence import expected_calibration_error
from core.classify.model import (
    DEFAULT_COVERAGE,
    METHOD_NAMES,
    Prediction,
    check_method,
    choose_method,
    train,
)
from core.errors import InvalidInput, NotEnoughLabels
from core.similarity import as_matrix, cosine_matrix, normalize_rows

#: Up to this many examples every one is left out in turn; above it, 5-fold cross-validation.
LEAVE_ONE_OUT_LIMIT = 100
FOLDS = 5


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall and F1 of one label, and how many examples it has (support)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Cross-validated quality of one method on a set of labelled examples.

    `accuracy`, `per_label` (in `labels` order) and `confusion` (rows: true label, columns:
    predicted, both in `labels` order) count every example's most probable label, abstentions
    ignored. `coverage` is the fraction the model would answer (its threshold calibrated for
    `target_coverage` on each training part, plus the optional `min_similarity` / `min_margin`)
    and `answered_accuracy` the accuracy on those (None when it answers none). `ece` is the
    expected calibration error of the stated confidence (10 equal-width bins): 0 when a stated
    90% is right 90% of the time. `predictions` are the held-out predictions, in input order.
    """

    method: str
    method_reason: str
    strategy: str
    n: int
    labels: list[str]
    accuracy: float
    per_label: list[LabelScore]
    confusion: np.ndarray
    coverage: float
    answered_accuracy: float | None
    ece: float
    target_coverage: float
    min_similarity: float | None
    min_margin: float | None
    predictions: list[Prediction]

    def headline(self) -> dict[str, Any]:
        """The figures a set's evaluation history keeps (`Store.record_evaluation`'s keywords)."""
        kept = ("method", "strategy", "n", "accuracy", "coverage", "answered_accuracy", "ece")
        return {name: getattr(self, name) for name in kept}


def _lone_label_predictions(
    points: np.ndarray, train_points: np.ndarray, train_y: np.ndarray, method: str
) -> list[Prediction]:
    # The training part holds a single label (two labels, one with a single example that is the
    # one left out): no model can be trained, and its only possible answer is no real choice.
    only = str(train_y[0])
    similarity = cosine_matrix(points, normalize_rows(train_points).mean(axis=0, keepdims=True))[:, 0]
    return [
        Prediction(
            label=None,
            best_label=only,
            confidence=1.0,
            scores={only: float(score)},
            probabilities={only: 1.0},
            method=method,
            abstained=True,
            reason="no other label to compare with",
        )
        for score in similarity
    ]


def evaluate(
    X: np.ndarray,
    y: Sequence[str],
    *,
    method: str,
    temperature: float | None = None,
    target_coverage: float = DEFAULT_COVERAGE,
    min_similarity: float | None = None,
    min_margin: float | None = None,
) -> Evaluation:
    """Cross-validate `method` on embeddings `X` and labels `y`.

    Up to 100 examples, leave-one-out; above, 5-fold cross-validation, stratified when every label
    has at least 5 examples (plain shuffled k-fold otherwise), seed 0. For "auto", the method that
    `train` would choose on the whole set is evaluated. A left-out example whose label has no
    other example can only be misclassified: that is the honest answer for such a label.
    """
    check_method(method)
    points = as_matrix(X, name="X")
    if len(points) != len(y):
        raise InvalidInput(f"got {len(points)} vectors but {len(y)} labels")
    labels, index = encode_labels(y)
    if len(labels) < 2:
        raise NotEnoughLabels("an evaluation needs at least two labels with examples")
    truth = np.asarray(y).astype(str)

    if method == "auto":
        method, reason, _ = choose_method(points, list(truth), temperature=temperature)
    else:
        reason = f"{METHOD_NAMES[method]}, as asked"

    n = len(points)
    splitter: LeaveOneOut | StratifiedKFold | KFold
    if n <= LEAVE_ONE_OUT_LIMIT:
        splitter, strategy = LeaveOneOut(), "leave-one-out"
    elif np.bincount(index).min() >= FOLDS:
        splitter, strategy = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0), f"{FOLDS}-fold"
    else:
        splitter, strategy = KFold(n_splits=FOLDS, shuffle=True, random_state=0), f"{FOLDS}-fold"

    held_out: list[Prediction | None] = [None] * n
    for train_rows, test_rows in splitter.split(points, truth):
        try:
            model = train(
                points[train_rows],
                list(truth[train_rows]),
                method=method,
                temperature=temperature,
                target_coverage=target_coverage,
            )
        except NotEnoughLabels:
            answers = _lone_label_predictions(
                points[test_rows], points[train_rows], truth[train_rows], method
            )
        else:
            answers = model.predict(points[test_rows], min_similarity=min_similarity, min_margin=min_margin)
        for row, answer in zip(test_rows, answers, strict=True):
            held_out[row] = answer
    predictions = [p for p in held_out if p is not None]

    guessed = np.array([p.best_label for p in predictions])
    answered = np.array([not p.abstained for p in predictions])
    correct = guessed == truth
    label_list = [str(label) for label in labels]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guessed, labels=label_list, zero_division=0
    )
    return Evaluation(
        method=method,
        method_reason=reason,
        strategy=strategy,
        n=n,
        labels=label_list,
        accuracy=float(correct.mean()),
        per_label=[
            LabelScore(label, float(p), float(r), float(f), int(s))
            for label, p, r, f, s in zip(label_list, precision, recall, f1, support, strict=True)
        ],
        confusion=confusion_matrix(truth, guessed, labels=label_list),
        coverage=float(answered.mean()),
        answered_accuracy=float(correct[answered].mean()) if answered.any() else None,
        ece=expected_calibration_error(np.array([p.confidence for p in predictions]), correct),
        target_coverage=target_coverage,
        min_similarity=min_similarity,
        min_margin=min_margin,
        predictions=predictions,
    )
