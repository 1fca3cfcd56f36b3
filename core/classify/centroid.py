"""The centroid classifier: one mean embedding per label, nearest by cosine, softmax for confidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from core.classify.calibration import calibrate_temperature, softmax
from core.errors import InvalidInput
from core.similarity import as_matrix, cosine_matrix, normalize_rows


def encode_labels(y: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct labels, and each row's index into them."""
    labels, index = np.unique(np.asarray(y), return_inverse=True)
    return labels, index.reshape(-1)


def label_sums(points: np.ndarray, index: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the sum of its rows (n_labels, d) and how many rows it has (n_labels,)."""
    one_hot = np.zeros((len(index), n_labels))
    one_hot[np.arange(len(index)), index] = 1.0
    return one_hot.T @ points, one_hot.sum(axis=0)


def centroids(points: np.ndarray, index: np.ndarray, n_labels: int) -> np.ndarray:
    """Unit-length centroid of each label: the mean of its (normalised) rows, normalised again.

    Normalising the mean does not change which label is nearest, but makes `points @ centroids.T`
    a cosine. A label whose rows cancel out gets a zero centroid, similarity 0 to everything.
    """
    sums, counts = label_sums(normalize_rows(points), index, n_labels)
    return normalize_rows(sums / np.maximum(counts, 1)[:, None])


class CentroidClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier over embeddings: nearest label centroid by cosine.

    `decision_function` gives the cosine to every centroid (columns in `classes_` order),
    `predict_proba` their softmax at `temperature_`: the given `temperature`, or with None one
    calibrated on the training rows (see `core.classify.calibration`). Being a proper estimator,
    it works with `cross_val_score`, `cross_val_predict` and `clone`. (The mixin comes before
    `BaseEstimator`, the order scikit-learn requires.)
    """

    def __init__(self, temperature: float | None = None) -> None:
        self.temperature = temperature

    def fit(self, X: Any, y: Any) -> Self:
        points = as_matrix(X, name="X")
        if len(points) != len(y):
            raise InvalidInput(f"got {len(points)} vectors but {len(y)} labels")
        self.classes_, index = encode_labels(y)
        self.centroids_ = centroids(points, index, len(self.classes_))
        self.n_features_in_ = points.shape[1]
        self.temperature_ = (
            float(self.temperature) if self.temperature is not None else calibrate_temperature(points, y)
        )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        points = as_matrix(X, name="X")
        if points.shape[1] != self.n_features_in_:
            raise InvalidInput(f"expected {self.n_features_in_}-d vectors, got {points.shape[1]}-d")
        return cosine_matrix(points, self.centroids_)

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(self.decision_function(X), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
