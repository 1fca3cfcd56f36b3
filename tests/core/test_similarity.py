"""Cosine matrices and the most similar pairs, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInput
from core.similarity import SimilarPair, cosine_matrix, normalize_rows, top_pairs

R = 1 / np.sqrt(2)


def test_cosine_matrix_known_values() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    expected = np.array(
        [
            [1.0, 0.0, R, -1.0],
            [0.0, 1.0, R, 0.0],
            [R, R, 1.0, -R],
            [-1.0, 0.0, -R, 1.0],
        ]
    )
    np.testing.assert_allclose(cosine_matrix(a), expected, atol=1e-12)


def test_cosine_matrix_ignores_length_and_compares_two_sets() -> None:
    a = np.array([[3.0, 0.0], [0.0, 0.5]])
    b = np.array([[10.0, 10.0], [0.0, -2.0], [7.0, 0.0]])
    result = cosine_matrix(a, b)
    assert result.shape == (2, 3)
    np.testing.assert_allclose(result, [[R, 0.0, 1.0], [R, -1.0, 0.0]], atol=1e-12)


def test_zero_row_has_zero_similarity_not_nan() -> None:
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    result = cosine_matrix(a)
    assert not np.isnan(result).any()
    np.testing.assert_array_equal(result[0], [0.0, 0.0])
    assert result[1, 1] == pytest.approx(1.0)
    np.testing.assert_array_equal(normalize_rows(a)[0], [0.0, 0.0])


def test_cosine_never_leaves_minus_one_to_one() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 7)) * 1e6
    result = cosine_matrix(a)
    assert result.max() <= 1.0
    assert result.min() >= -1.0
    np.testing.assert_allclose(np.diag(result), 1.0)


def test_dimension_mismatch_and_bad_shape_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="2-d vectors with 3-d"):
        cosine_matrix(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(InvalidInput, match="2-D"):
        cosine_matrix(np.ones(3))


def test_top_pairs_best_first_upper_triangle_only() -> None:
    matrix = np.array(
        [
            [1.0, 0.2, 0.9, 0.1],
            [0.2, 1.0, 0.5, 0.7],
            [0.9, 0.5, 1.0, 0.3],
            [0.1, 0.7, 0.3, 1.0],
        ]
    )
    pairs = top_pairs(matrix, k=3)
    assert pairs == [SimilarPair(0, 2, 0.9), SimilarPair(1, 3, 0.7), SimilarPair(1, 2, 0.5)]
    everything = top_pairs(matrix, k=100)
    assert len(everything) == 6  # 4 * 3 / 2: no diagonal, no (j, i) duplicates
    assert all(p.i < p.j for p in everything)
    assert [p.score for p in everything] == sorted((p.score for p in everything), reverse=True)


def test_top_pairs_reads_only_the_upper_triangle() -> None:
    matrix = np.zeros((3, 3))
    matrix[2, 0] = 0.99  # lower triangle: must be ignored
    matrix[0, 1] = 0.5
    assert top_pairs(matrix, k=1) == [SimilarPair(0, 1, 0.5)]


def test_top_pairs_ties_keep_row_order() -> None:
    matrix = np.full((3, 3), 0.4)
    assert [(p.i, p.j) for p in top_pairs(matrix, k=3)] == [(0, 1), (0, 2), (1, 2)]


def test_top_pairs_edge_cases() -> None:
    assert top_pairs(np.ones((1, 1))) == []
    assert top_pairs(np.ones((3, 3)), k=0) == []
    with pytest.raises(InvalidInput, match="square"):
        top_pairs(np.ones((2, 3)))


def test_top_pairs_on_a_real_cosine_matrix() -> None:
    vectors = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    best = top_pairs(cosine_matrix(vectors), k=1)[0]
    assert (best.i, best.j) == (0, 1)
    assert best.score == pytest.approx(0.9 / np.sqrt(0.82))
