"""A linear adapter for frozen vectors (Gemini's cannot be fine-tuned): shrunk within-label whitening.

The directions along which a set's examples of one label vary among themselves say little about
which label a text has; whitening by the within-label covariance shrinks them, and stretches the
directions that separate labels. The covariance is estimated from the residuals of every example
to its label's mean and shrunk towards a multiple of the identity (scikit-learn's
`ShrunkCovariance`), so a few hundred examples in thousands of dimensions give a well-conditioned
map. The shrinkage is fixed, `SHRINKAGE`: chosen on BANKING77 draws that are not reported
(seeds 100-101, 10 examples per intent, MiniLM vectors); Ledoit-Wolf's own estimate (0.14 there)
whitened too hard, and cost coverage more than it gained accuracy.
The map is `x -> (x - mean) @ S^{-1/2}`; the head is fitted on the mapped vectors afterwards.

Only numpy and scikit-learn: a Gemini deployment need not install torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.covariance import ShrunkCovariance

from core.embeddings.tuned import KIND_ADAPTER, TunedWeights, seen_tensor
from core.errors import InvalidInput

#: Weight of the identity in the shrunk covariance (see the module's docstring).
SHRINKAGE = 0.6


def tune_adapter(
    vectors: np.ndarray, labels: Sequence[str], *, base: str, texts: Sequence[str]
) -> TunedWeights:
    """Fit the adapter on a set's example vectors (rows), their labels and texts, for embedder `base`."""
    started = time.monotonic()
    points = np.asarray(vectors, dtype=np.float64)
    if points.ndim != 2 or len(points) != len(labels):
        raise InvalidInput(f"got {len(points)} vectors but {len(labels)} labels")
    names, index = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    counts = np.bincount(index)
    if len(names) < 2 or counts.max() < 2:
        raise InvalidInput("tuning needs at least two labels, one of them with two or more examples")
    means = np.stack([points[index == c].mean(axis=0) for c in range(len(names))])
    residuals = points - means[index]
    # Labels with one example have no spread to learn from; their zero residuals would only
    # dilute the estimate.
    residuals = residuals[counts[index] >= 2]
    covariance = ShrunkCovariance(shrinkage=SHRINKAGE, assume_centered=True).fit(residuals).covariance_
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    floor = max(float(eigenvalues.max()) * 1e-6, 1e-12)
    inverse_root = (eigenvectors / np.sqrt(np.maximum(eigenvalues, floor))) @ eigenvectors.T
    # Scaled so the map's output has the input's overall size: nothing downstream cares, but
    # the numbers stay readable.
    inverse_root *= np.sqrt(np.trace(covariance) / len(covariance))
    shift = points.mean(axis=0)
    return TunedWeights(
        kind=KIND_ADAPTER,
        base=base,
        tensors={
            "matrix": inverse_root.astype(np.float32),
            "shift": shift.astype(np.float32),
            "trained_on": seen_tensor(texts),
        },
        details={
            "method": "within-label whitening",
            "shrinkage": SHRINKAGE,
            "seconds": round(time.monotonic() - started, 2),
        },
    )
