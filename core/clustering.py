"""Grouping embeddings with k-means, choosing the number of groups, and flattening them to 2-D."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from core.errors import InvalidInput
from core.similarity import normalize_rows

#: Above this many points the silhouette is measured on a random sample: it costs O(n²).
SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True, eq=False)
class Clustering:
    """The cluster of every input row (0..k-1), and how `k` came about.

    `chosen_by` is "given" (the caller's k), "silhouette" (the best of several k by cosine
    silhouette) or "only" (the input allowed a single sensible k: two texts, or all identical).
    `silhouette` is None when it is undefined (k = 1 or k = n).
    """

    assignments: np.ndarray
    k: int
    silhouette: float | None
    chosen_by: str


def _kmeans(vectors: np.ndarray, k: int, random_state: int) -> np.ndarray:
    if k == 1:
        return np.zeros(len(vectors), dtype=np.int64)
    model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
    return np.asarray(model.fit_predict(vectors), dtype=np.int64)


def _silhouette(vectors: np.ndarray, assignments: np.ndarray, random_state: int) -> float | None:
    n_clusters = len(np.unique(assignments))
    if not 2 <= n_clusters <= len(vectors) - 1:
        return None
    sample = SILHOUETTE_SAMPLE if len(vectors) > SILHOUETTE_SAMPLE else None
    return float(
        silhouette_score(vectors, assignments, metric="cosine", sample_size=sample, random_state=random_state)
    )


def cluster(
    vectors: np.ndarray, *, k: int | None = None, k_max: int = 10, random_state: int = 0
) -> Clustering:
    """Group rows of `vectors` with k-means on unit-length vectors (so closeness means cosine).

    With `k` given, that many clusters are made; it must be between 1 and the number of rows.
    Without it, every k from 2 to min(k_max, n - 1) is tried and the one with the best cosine
    silhouette kept. Small inputs: fewer than two rows is InvalidInput; two distinct rows make two
    clusters of one (`chosen_by="only"`, nothing to compare). Duplicate rows cannot be split, so k
    never exceeds the number of distinct rows: all-identical rows give one cluster, k=1.
    """
    points = normalize_rows(vectors)
    n = len(points)
    if n < 2:
        raise InvalidInput("clustering needs at least two texts")
    if k is not None and not 1 <= k <= n:
        raise InvalidInput(f"cannot make {k} clusters from {n} texts: pick k between 1 and {n}")
    if k is None and k_max < 2:
        raise InvalidInput("k_max must be at least 2")
    distinct = len(np.unique(points, axis=0))

    if k is not None:
        k_used = min(k, distinct)
        assignments = _kmeans(points, k_used, random_state)
        return Clustering(assignments, k_used, _silhouette(points, assignments, random_state), "given")

    k_top = min(k_max, n - 1, distinct)
    if k_top < 2:
        k_only = min(2, distinct)
        return Clustering(_kmeans(points, k_only, random_state), k_only, None, "only")

    best: tuple[float, int, np.ndarray] | None = None
    for candidate in range(2, k_top + 1):
        assignments = _kmeans(points, candidate, random_state)
        score = _silhouette(points, assignments, random_state)
        # Strictly better only: on a tie the smaller k wins.
        if score is not None and (best is None or score > best[0]):
            best = (score, candidate, assignments)
    if best is None:  # k-means merged every candidate into one group: nothing to compare
        return Clustering(np.zeros(n, dtype=np.int64), 1, None, "only")
    score, k_best, assignments = best
    return Clustering(assignments, k_best, score, "silhouette")


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """Rows of `vectors` (normalised first) flattened to 2-D by PCA, shape (n, 2), for a scatter plot.

    One row, or rows that are all the same, land on the origin; with two rows, or 1-d input, the
    second coordinate is 0.
    """
    points = normalize_rows(vectors)
    n, d = points.shape
    out = np.zeros((n, 2))
    centred = points - points.mean(axis=0) if n else points
    if n < 2 or not np.any(np.abs(centred) > 1e-12):
        return out
    components = min(2, n - 1, d)
    out[:, :components] = PCA(n_components=components).fit_transform(points)
    return out
