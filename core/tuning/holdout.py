"""Whether a tune is worth keeping: tuned and plain, each fitted on the same examples, scored on
examples neither saw.

A fine-tuned encoder has seen every example it was trained on, so the set's own examples cannot
tell whether it helps: on them it always looks good. The tune therefore trains on a stratified
share of the examples and keeps back the rest (`split`); `compare` fits the usual head on the
training share twice, with the plain vectors and with the tuned ones, and scores both on the
kept-back examples by their most probable label. (Not with abstention as a miss: a head fitted
only on examples the tuned encoder has seen calibrates its "not sure" on them, too strictly; the
model finally used calibrates on the kept-back examples, see `train(seen=)`.) The tuned model
is used only if it did strictly better: on a set where tuning does not help, classification
stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.classify import train

#: The share of each label's examples kept back to judge a tune.
HELD_OUT_SHARE = 0.2


@dataclass(frozen=True)
class Verdict:
    """Accuracy (most probable label) of the tuned and the plain model on `held_out` examples
    neither was fitted on; `better` when the tuned one did strictly better."""

    tuned_accuracy: float
    plain_accuracy: float
    held_out: int

    @property
    def better(self) -> bool:
        return self.held_out > 0 and self.tuned_accuracy > self.plain_accuracy


def split(
    labels: Sequence[str], *, seed: int = 0, share: float = HELD_OUT_SHARE
) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): `share` of every label's examples, rounded, kept back.

    A label keeps at least two examples for training (a contrastive pair needs two), so labels
    with fewer than three examples lend none to the judging.
    """
    rng = np.random.default_rng(seed)
    names = np.asarray(labels, dtype=str)
    kept_back: list[int] = []
    for label in np.unique(names):
        rows = np.flatnonzero(names == label)
        n = min(round(share * len(rows)), len(rows) - 2)
        if n > 0:
            kept_back.extend(rng.choice(rows, size=n, replace=False).tolist())
    held = np.array(sorted(kept_back), dtype=np.int64)
    training = np.setdiff1d(np.arange(len(names)), held)
    return training, held


def compare(
    plain: np.ndarray,
    tuned: np.ndarray,
    labels: Sequence[str],
    training: np.ndarray,
    held: np.ndarray,
    *,
    target_coverage: float,
) -> Verdict:
    """Score the head on plain and on tuned vectors (rows aligned with `labels`)."""
    names = np.asarray(labels, dtype=str)
    if len(held) == 0 or len(np.unique(names[training])) < 2:
        return Verdict(0.0, 0.0, 0)
    accuracy = []
    for vectors in (tuned, plain):
        model = train(vectors[training], list(names[training]), target_coverage=target_coverage)
        predictions = model.predict(vectors[held])
        accuracy.append(
            float(np.mean([p.best_label == y for p, y in zip(predictions, names[held], strict=True)]))
        )
    return Verdict(tuned_accuracy=accuracy[0], plain_accuracy=accuracy[1], held_out=len(held))
