"""Cosine similarity between embeddings, and the most similar pairs among them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput


@dataclass(frozen=True)
class SimilarPair:
    """Two rows `i < j` of a square similarity matrix and their similarity."""

    i: int
    j: int
    score: float


def as_matrix(vectors: np.ndarray, *, name: str = "vectors") -> np.ndarray:
    """`vectors` as a 2-D float64 array, or InvalidInput when it is not one."""
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D array (one vector per row), not {array.ndim}-D")
    return array


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length; an all-zero row stays all zero instead of turning into NaN."""
    array = as_matrix(vectors)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every row of `a` with every row of `b` (default: `a` itself).

    Rows are normalised first, so the inputs need not be unit length; a zero row has similarity
    0 with everything (itself included). The result has shape (len(a), len(b)) and is clipped to
    [-1, 1] so rounding never produces a cosine of 1.0000001.
    """
    left = normalize_rows(a)
    right = left if b is None else normalize_rows(b)
    if left.shape[1] != right.shape[1]:
        raise InvalidInput(f"cannot compare {left.shape[1]}-d vectors with {right.shape[1]}-d vectors")
    return np.clip(left @ right.T, -1.0, 1.0)


def top_pairs(matrix: np.ndarray, *, k: int = 10) -> list[SimilarPair]:
    """The `k` most similar pairs `i < j` of a square similarity matrix, best first.

    Only the strict upper triangle is read, so a row is never paired with itself and each pair
    appears once. Equal scores keep row order (a stable sort), so the answer is deterministic.
    """
    scores = as_matrix(matrix, name="matrix")
    n, m = scores.shape
    if n != m:
        raise InvalidInput(f"top_pairs needs a square matrix, not {n}x{m}")
    if k <= 0 or n < 2:
        return []
    rows, cols = np.triu_indices(n, k=1)
    upper = scores[rows, cols]
    order = np.argsort(-upper, kind="stable")[:k]
    return [SimilarPair(int(rows[o]), int(cols[o]), float(upper[o])) for o in order]
