"""When to say "not sure": a threshold calibrated on the set's own held-out examples, at any embedding scale.

Embedders differ in where their cosines live (MiniLM's unrelated sentences sit near 0.1, Gemini's
near 0.6), so no absolute cosine means "unrelated". The rule is split-conformal instead: the
out-of-scope score of a text is its cosine to the set's nearest example; each example's own score
is taken with it left out; the threshold is the (1 - coverage) quantile of those held-out scores.
So about `coverage` of text like the set's own is answered, and anything less like the set than
that is not. A maximum and a quantile both commute with any increasing affine map, so if every
cosine becomes a + b × cosine (b > 0) the decisions are exactly the same.

The classifiers, for the same reason, work in the set's own coordinates (`centre`): every vector
centred on the mean of the set's examples and renormalised. A component every embedding shares,
which is what lifts all of an embedder's cosines, cancels out there.

Measured on BANKING77 with held-out intents (draws with seeds 100-101, not reported; see
benchmarks/banking77.py), at 95% coverage the nearest example turned away 48-52% of out-of-scope
queries; the cosine to the label centroid 31-33%, Mahalanobis distance with a Ledoit-Wolf shared
covariance 33-38%, logistic regression's top probability 39-40%, its margin 36% and its energy
score 34%, all at the same in-scope accuracy within 1.5 points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput
from core.similarity import as_matrix, normalize_rows

#: Rows of examples compared at once when leaving each out: bounds memory to CHUNK × n floats.
CHUNK = 1024


def set_mean(points: np.ndarray) -> np.ndarray:
    """The mean of a set's unit-length example vectors: the origin of its own coordinates."""
    return np.asarray(normalize_rows(as_matrix(points, name="X")).mean(axis=0))


def centre(points: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Unit-length rows of `points` (normalised first) minus `mean`, renormalised."""
    return normalize_rows(normalize_rows(as_matrix(points, name="X")) - mean)


def nearest_similarity(queries: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """Each query row's largest cosine to any example row (both already unit length)."""
    if len(examples) == 0:
        raise InvalidInput("no examples to compare with")
    # A plain product, not `core.similarity.cosine_matrix`: the rows are unit length already, and
    # the examples stay the float32 array the model holds instead of a float64 copy a call.
    out = np.empty(len(queries))
    for start in range(0, len(queries), CHUNK):
        out[start : start + CHUNK] = (queries[start : start + CHUNK] @ examples.T).max(axis=1)
    return out


def held_out_nearest_similarity(examples: np.ndarray) -> np.ndarray:
    """Each example's largest cosine to any other example (leave-one-out); needs two examples."""
    if len(examples) < 2:
        raise InvalidInput("leaving an example out needs at least two")
    out = np.empty(len(examples))
    for start in range(0, len(examples), CHUNK):
        block = examples[start : start + CHUNK] @ examples.T
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf
        out[start : start + CHUNK] = block.max(axis=1)
    return out


def conformal_threshold(held_out_scores: np.ndarray, coverage: float) -> float:
    """The score at or above which `coverage` of the held-out scores lie (their (1 - coverage) quantile).

    Linear interpolation between order statistics: an affine change of the scores changes the
    threshold the same way, so the decisions do not move. Coverage must be in (0, 1].
    """
    scores = np.asarray(held_out_scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        raise InvalidInput("a threshold needs at least one held-out score")
    if not 0 < coverage <= 1:
        raise InvalidInput(f"coverage must be in (0, 1], not {coverage}")
    return float(np.quantile(scores, 1.0 - coverage))


@dataclass(frozen=True)
class Abstention:
    """A fitted model's "not sure" rule: its examples (unit length, float32 to halve what a kept
    model holds), the cosine to the nearest of them below which it abstains (None: a set too small
    to hold an example out, which never abstains this way), and the coverage that threshold was
    calibrated for."""

    examples: np.ndarray
    threshold: float | None
    target_coverage: float

    @classmethod
    def calibrate(cls, examples: np.ndarray, *, target_coverage: float, judged: np.ndarray) -> Abstention:
        """The threshold at which `target_coverage` of the `judged` examples' held-out scores
        would be answered (`judged`: a mask of the examples fit to calibrate on)."""
        kept = np.asarray(examples, dtype=np.float32)
        threshold = (
            conformal_threshold(held_out_nearest_similarity(kept)[judged], target_coverage)
            if len(kept) >= 2
            else None
        )
        return cls(kept, threshold, target_coverage)

    def nearest(self, points: np.ndarray) -> np.ndarray:
        """Each unit-length row's cosine to the nearest example: its out-of-scope score."""
        return nearest_similarity(points.astype(self.examples.dtype), self.examples)

    def unlike(self, nearest: np.ndarray) -> np.ndarray:
        """Which scores (from `nearest`) fall below the threshold: the texts to abstain on."""
        if self.threshold is None:
            return np.zeros(len(nearest), dtype=bool)
        return np.asarray(nearest < self.threshold)
