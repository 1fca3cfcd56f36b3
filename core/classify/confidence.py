"""Honest confidence: probabilities recalibrated on held-out examples, shrunk by how much evidence a set has.

A classifier's own probabilities say how far apart its scores are, not how often it is right.
`ConfidenceCalibration` fixes two things. It fits one temperature to the held-out (cross-validated)
probabilities of the set's own examples, so that a stated 90% is right about 90% of the time on
text like the set's; and it mixes every answer with the uniform distribution, with weight
1 / (n + 1) for a predicted label that has n examples, so that three examples can never make
anything 100% certain (at most 3/4 plus a share of the uniform part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from core.errors import InvalidInput

#: Equal-width confidence bins for the expected calibration error.
ECE_BINS = 10
#: The temperature search range (applied to log-probabilities, so 1 leaves them as they are).
MIN_SHARPNESS_TEMPERATURE = 0.05
MAX_SHARPNESS_TEMPERATURE = 20.0
#: Fewer held-out rows than this and the temperature stays 1.
MIN_CALIBRATION_ROWS = 4


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over `bins` equal-width confidence bins, weighted by bin size.

    `confidence` holds the probability given to each predicted label, `correct` whether that label
    was right. 0 is perfectly calibrated; an empty input is InvalidInput.
    """
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    hits = np.asarray(correct, dtype=np.float64).reshape(-1)
    if len(conf) != len(hits):
        raise InvalidInput(f"got {len(conf)} confidences but {len(hits)} outcomes")
    if len(conf) == 0:
        raise InvalidInput("the calibration error needs at least one prediction")
    if bins < 1:
        raise InvalidInput("the calibration error needs at least one bin")
    which = np.minimum((np.clip(conf, 0.0, 1.0) * bins).astype(int), bins - 1)
    # Per bin, |sum of hits - sum of confidences| / n is its size share times its |accuracy - confidence|.
    gap = np.abs(
        np.bincount(which, weights=hits, minlength=bins) - np.bincount(which, weights=conf, minlength=bins)
    )
    return float(gap.sum() / len(conf))


def evidence_weights(counts: np.ndarray) -> np.ndarray:
    """The weight of the uniform distribution for a label with `counts` examples: 1 / (n + 1)."""
    return 1.0 / (np.asarray(counts, dtype=np.float64) + 1.0)


def sharpen(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of log(p) / temperature: <1 sharpens, >1 flattens, 1 leaves p unchanged."""
    logs = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-300)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    exp = np.exp(logs)
    return exp / exp.sum(axis=1, keepdims=True)


def shrink(probabilities: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each row mixed with the uniform distribution, weight 1/(n+1) for its most probable label's n."""
    p = np.asarray(probabilities, dtype=np.float64)
    weight = evidence_weights(np.asarray(counts)[np.argmax(p, axis=1)])[:, None]
    return (1.0 - weight) * p + weight / p.shape[1]


@dataclass(frozen=True)
class ConfidenceCalibration:
    """A fitted recalibration: `temperature` on log-probabilities, then shrinkage by `counts`.

    `counts` holds the number of examples of each label, in the classifier's label order.
    """

    temperature: float
    counts: tuple[int, ...]

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for rows of the classifier's raw probabilities."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.counts):
            raise InvalidInput(f"expected probabilities over {len(self.counts)} labels, got shape {p.shape}")
        return shrink(sharpen(p, self.temperature), np.asarray(self.counts))


def fit_confidence(held_out: np.ndarray, targets: np.ndarray, counts: np.ndarray) -> ConfidenceCalibration:
    """The temperature that best fits the held-out probabilities once shrunk (negative log-likelihood).

    `held_out` holds, for each example, the probabilities a model that never saw it gave to every
    label; `targets` each example's own label index; `counts` the examples per label. With fewer
    than four held-out rows the temperature stays 1 and only the shrinkage applies.
    """
    p = np.asarray(held_out, dtype=np.float64)
    target = np.asarray(targets, dtype=np.int64).reshape(-1)
    count_array = np.asarray(counts, dtype=np.int64)
    frozen = tuple(int(c) for c in count_array)
    if p.ndim != 2 or len(p) != len(target):
        raise InvalidInput("held-out probabilities and targets do not match")
    if len(target) < MIN_CALIBRATION_ROWS:
        return ConfidenceCalibration(1.0, frozen)
    rows = np.arange(len(target))

    def loss(log_t: float) -> float:
        q = shrink(sharpen(p, float(np.exp(log_t))), count_array)[rows, target]
        return float(-np.mean(np.log(np.maximum(q, 1e-300))))

    result = minimize_scalar(
        loss,
        bounds=(np.log(MIN_SHARPNESS_TEMPERATURE), np.log(MAX_SHARPNESS_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return ConfidenceCalibration(float(np.exp(result.x)), frozen)
