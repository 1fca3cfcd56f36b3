"""Temperature scaling for the centroid classifier's softmax.

Cosines between sentence embeddings sit in a narrow band (a clear match 0.6, the others 0.3), so a
plain softmax over them is near uniform and says nothing. Dividing by a temperature T < 1
stretches the gaps; T is chosen to minimise the negative log-likelihood of each example's own
label, each example scored against centroids that leave it out, so the fit is honest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from core.errors import InvalidInput
from core.similarity import as_matrix, cosine_matrix, normalize_rows

#: Used when there is too little data to calibrate; about right for MiniLM and Gemini embeddings.
DEFAULT_TEMPERATURE = 0.05
#: The search range for T.
MIN_TEMPERATURE = 0.005
MAX_TEMPERATURE = 1.0
#: Fewer usable (leave-one-out-able) examples than this and the default is used.
MIN_CALIBRATION_ROWS = 4


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of `scores / temperature`, shifted by the row maximum so it never overflows."""
    if temperature <= 0:
        raise InvalidInput("the softmax temperature must be above 0")
    scaled = np.asarray(scores, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def leave_one_out_cosines(X: np.ndarray, y: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each example's cosine to every label centroid, its own label's centroid computed without it.

    Returns (cosines (m, n_labels), own label index (m,)) for the m examples whose label has at
    least two examples; a label's only example cannot be left out of it, so its row is dropped.
    Vectorised: the left-out centroid is the label's sum minus the example (its norm follows from
    the dot products), so no model is refitted.
    """
    points = normalize_rows(as_matrix(X, name="X"))
    if len(points) != len(y):
        raise InvalidInput(f"got {len(points)} vectors but {len(y)} labels")
    labels, index = np.unique(np.asarray(y), return_inverse=True)
    index = index.reshape(-1)
    sums = np.zeros((len(labels), points.shape[1]))
    np.add.at(sums, index, points)
    counts = np.bincount(index, minlength=len(labels))
    cosines = cosine_matrix(points, sums)

    own_sum = sums[index]
    dot_own = np.einsum("ij,ij->i", points, own_sum)
    sq_self = np.einsum("ij,ij->i", points, points)
    # |s - x|² = |s|² - 2 x·s + |x|², without materialising s - x.
    rest_norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", own_sum, own_sum) - 2 * dot_own + sq_self, 0.0))
    rest_dot = dot_own - sq_self
    loo = np.divide(rest_dot, rest_norm, out=np.zeros_like(rest_dot), where=rest_norm > 1e-12)
    cosines[np.arange(len(points)), index] = np.clip(loo, -1.0, 1.0)

    usable = counts[index] >= 2
    return cosines[usable], index[usable]


def negative_log_likelihood(cosines: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean -log p(own label) under a softmax of `cosines / temperature`."""
    probabilities = softmax(cosines, temperature)[np.arange(len(targets)), targets]
    return float(-np.mean(np.log(np.maximum(probabilities, 1e-300))))


def calibrate_temperature(X: np.ndarray, y: Sequence[str] | np.ndarray) -> float:
    """The softmax temperature in [0.005, 1] that best fits the examples' own labels.

    Minimises the negative log-likelihood of the leave-one-out softmax over log T (bounded scalar
    search). With fewer than two labels, or fewer than four examples whose label has another
    example, there is nothing to fit and `DEFAULT_TEMPERATURE` is returned.
    """
    cosines, targets = leave_one_out_cosines(X, y)
    if len(targets) < MIN_CALIBRATION_ROWS or cosines.shape[1] < 2:
        return DEFAULT_TEMPERATURE
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(cosines, targets, float(np.exp(log_t))),
        bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return float(np.clip(np.exp(result.x), MIN_TEMPERATURE, MAX_TEMPERATURE))
