"""Training a classifier on a label set's examples and predicting with abstention: the facade.

`train` takes the examples' embeddings and labels and returns a `TrainedModel`; its `predict`
returns one `Prediction` per vector. The method is "centroid" (nearest label centroid, softmax at
a calibrated temperature), "logreg" (logistic regression) or "auto" (whichever cross-validates
better on the set's own examples, the centroid on a tie or when a label has a single example).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from core.classify.calibration import DEFAULT_TEMPERATURE
from core.classify.centroid import CentroidClassifier, encode_labels
from core.classify.logreg import logistic_regression
from core.errors import InvalidInput, NotEnoughLabels
from core.similarity import as_matrix, normalize_rows

METHODS = ("centroid", "logreg", "auto")
METHOD_NAMES = {"centroid": "centroid", "logreg": "logistic regression"}
#: At most this many folds when "auto" cross-validates the two methods.
AUTO_FOLDS = 5
LARGE_SET = 2000


@dataclass(frozen=True)
class Prediction:
    """The answer for one text.

    `label` is the predicted label, or None when the model abstains (`reason` says why);
    `best_label` is the most probable label either way and `confidence` its probability.
    `scores` holds the cosine to every label's centroid whatever the method, best first;
    `probabilities` the method's probability for every label, best first.
    """

    label: str | None
    best_label: str
    confidence: float
    scores: dict[str, float]
    probabilities: dict[str, float]
    method: str
    abstained: bool
    reason: str | None


def _check_training_data(X: np.ndarray, y: Sequence[str]) -> np.ndarray:
    points = as_matrix(X, name="X")
    if len(points) != len(y):
        raise InvalidInput(f"got {len(points)} vectors but {len(y)} labels")
    if not np.all(np.isfinite(points)):
        raise InvalidInput("the vectors contain NaN or infinite values")
    # Unit length for every method: logistic regression's C is tuned for it.
    return normalize_rows(points)


class TrainedModel:
    """A classifier fitted on a label set's examples, ready to predict.

    `labels` are sorted; `method` is the one actually used ("centroid" or "logreg") and
    `method_reason` says why; `temperature` is the centroid softmax temperature (None for logistic
    regression); `cv_scores` holds the cross-validated accuracy of each method when "auto" measured
    them (empty otherwise); `counts` the number of examples per label.
    """

    def __init__(
        self,
        *,
        method: str,
        method_reason: str,
        centroid: CentroidClassifier,
        logreg: LogisticRegression | None,
        cv_scores: dict[str, float],
        counts: dict[str, int],
    ) -> None:
        self.method = method
        self.method_reason = method_reason
        self.labels: list[str] = [str(label) for label in centroid.classes_]
        self.temperature: float | None = centroid.temperature_ if method == "centroid" else None
        self.cv_scores = cv_scores
        self.counts = counts
        self.dimensions = int(centroid.n_features_in_)
        self._centroid = centroid
        self._logreg = logreg

    def __repr__(self) -> str:
        return f"TrainedModel(method={self.method!r}, labels={len(self.labels)}, dim={self.dimensions})"

    def _points(self, X: np.ndarray) -> np.ndarray:
        points = np.asarray(X, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, :]
        points = as_matrix(points, name="X")
        if points.shape[1] != self.dimensions:
            raise InvalidInput(
                f"the model was trained on {self.dimensions}-d vectors, not {points.shape[1]}-d ones"
            )
        return normalize_rows(points)

    def similarities(self, X: np.ndarray) -> np.ndarray:
        """Cosine of every row of `X` to every label centroid, shape (n, len(labels))."""
        return self._centroid.decision_function(self._points(X))

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """The method's probability of every label for every row, shape (n, len(labels))."""
        points = self._points(X)
        if self._logreg is not None:
            return np.asarray(self._logreg.predict_proba(points))
        return self._centroid.predict_proba(points)

    def predict(self, X: np.ndarray, *, min_similarity: float, min_margin: float) -> list[Prediction]:
        """One `Prediction` per row of `X` (a single 1-D vector is also accepted).

        The model abstains (label None) when even the closest centroid has a cosine below
        `min_similarity` (the text is about none of the labels), or when the two most probable
        labels are less than `min_margin` apart in probability (it cannot tell them apart).
        """
        points = self._points(X)
        if len(points) == 0:
            return []
        cosines = self._centroid.decision_function(points)
        probabilities = self.probabilities(points)
        rows = np.arange(len(points))
        by_probability = np.argsort(-probabilities, axis=1, kind="stable")
        by_cosine = np.argsort(-cosines, axis=1, kind="stable")
        first, second = by_probability[:, 0], by_probability[:, 1]
        confidence = probabilities[rows, first]
        margin = confidence - probabilities[rows, second]
        closest = cosines[rows, by_cosine[:, 0]]
        too_far = closest < min_similarity
        too_close = ~too_far & (margin < min_margin)

        labels = self.labels
        predictions = []
        for r in range(len(points)):
            reason = None
            if too_far[r]:
                reason = f"closest label is only {closest[r]:.2f} similar"
            elif too_close[r]:
                a, b = first[r], second[r]
                reason = (
                    f"too close between {labels[a]} and {labels[b]} "
                    f"({probabilities[r, a]:.2f} vs {probabilities[r, b]:.2f})"
                )
            predictions.append(
                Prediction(
                    label=None if reason else labels[first[r]],
                    best_label=labels[first[r]],
                    confidence=float(confidence[r]),
                    scores={labels[c]: float(cosines[r, c]) for c in by_cosine[r]},
                    probabilities={labels[c]: float(probabilities[r, c]) for c in by_probability[r]},
                    method=self.method,
                    abstained=reason is not None,
                    reason=reason,
                )
            )
        return predictions


def choose_method(
    X: np.ndarray, y: Sequence[str], *, temperature: float | None = None
) -> tuple[str, str, dict[str, float]]:
    """What "auto" picks for these examples: (method, reason, cross-validated accuracy per method).

    Stratified k-fold with k = min(5, the smallest label's count), 3 folds above LARGE_SET
    examples. When some label has a single example nothing can be cross-validated and the
    centroid, which works from one example, is used.
    A tie goes to the centroid: it is cheaper and its confidence is calibrated.
    """
    points = _check_training_data(X, y)
    labels, index = encode_labels(y)
    counts = np.bincount(index, minlength=len(labels))
    smallest = int(counts.min())
    if smallest < 2:
        lonely = str(labels[int(np.argmin(counts))])
        return (
            "centroid",
            f"centroid, because {lonely} has only one example: too few to compare methods",
            {},
        )
    # Large sets estimate accuracy well from fewer folds, and each logreg fit costs seconds there.
    folds = min(AUTO_FOLDS if len(points) <= LARGE_SET else 3, smallest)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    # Accuracy does not depend on the temperature, so skip calibrating it in every fold.
    centroid = CentroidClassifier(temperature=temperature or DEFAULT_TEMPERATURE)
    labels_array = np.asarray(y)
    scores = {
        "centroid": float(np.mean(cross_val_score(centroid, points, labels_array, cv=splitter))),
        "logreg": float(np.mean(cross_val_score(logistic_regression(), points, labels_array, cv=splitter))),
    }
    chosen = "logreg" if scores["logreg"] > scores["centroid"] else "centroid"
    other = "centroid" if chosen == "logreg" else "logreg"
    verdict = "a tie goes to the centroid" if scores["logreg"] == scores["centroid"] else "better"
    reason = (
        f"{METHOD_NAMES[chosen]}: {scores[chosen]:.0%} accuracy vs {scores[other]:.0%} for "
        f"{METHOD_NAMES[other]} in {folds}-fold cross-validation ({verdict})"
    )
    return chosen, reason, scores


def train(
    X: np.ndarray, y: Sequence[str], *, method: str = "auto", temperature: float | None = None
) -> TrainedModel:
    """Fit a classifier on embeddings `X` (one row per example) and their labels `y`.

    `method` is "centroid", "logreg" or "auto" (see `choose_method`); anything else is
    InvalidInput. `temperature` fixes the centroid softmax temperature; None calibrates it on the
    examples. Fewer than two distinct labels raises NotEnoughLabels.
    """
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if temperature is not None and temperature <= 0:
        raise InvalidInput("the temperature must be above 0")
    points = _check_training_data(X, y)
    labels, index = encode_labels(y)
    if len(labels) < 2:
        have = f"only {labels[0]!s} has any" if len(labels) else "none have any"
        raise NotEnoughLabels(f"classification needs at least two labels with examples; {have}")
    counts = {str(label): int(c) for label, c in zip(labels, np.bincount(index), strict=True)}

    cv_scores: dict[str, float] = {}
    if method == "auto":
        method, reason, cv_scores = choose_method(points, y, temperature=temperature)
    else:
        reason = f"{METHOD_NAMES[method]}, as asked"

    labels_array = np.asarray(y)
    if method == "centroid":
        centroid = CentroidClassifier(temperature=temperature).fit(points, labels_array)
        logreg = None
    else:
        # The centroids still give every prediction its cosines; their temperature is unused.
        centroid = CentroidClassifier(temperature=DEFAULT_TEMPERATURE).fit(points, labels_array)
        logreg = logistic_regression().fit(points, labels_array)
    return TrainedModel(
        method=method,
        method_reason=reason,
        centroid=centroid,
        logreg=logreg,
        cv_scores=cv_scores,
        counts=counts,
    )
