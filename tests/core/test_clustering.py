"""k-means clustering, the silhouette choice of k, small-input rules and the 2-D projection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.clustering import cluster, project_2d
from core.errors import InvalidInput


def blobs(k: int, per_blob: int = 8, *, dim: int = 16, noise: float = 0.05, seed: int = 0):
    """`k` tight groups around orthogonal directions; returns (vectors, true group of each row)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:k]
    truth = np.repeat(np.arange(k), per_blob)
    vectors = centres[truth] + rng.normal(scale=noise, size=(len(truth), dim))
    return vectors, truth


@pytest.mark.parametrize("true_k", [2, 3, 5])
def test_silhouette_finds_the_true_number_of_groups(true_k: int) -> None:
    vectors, truth = blobs(true_k)
    result = cluster(vectors)
    assert result.chosen_by == "silhouette"
    assert result.k == true_k
    assert adjusted_rand_score(truth, result.assignments) == pytest.approx(1.0)
    assert result.silhouette is not None and result.silhouette > 0.8


def test_given_k_is_used_as_is() -> None:
    vectors, _ = blobs(3)
    result = cluster(vectors, k=2)
    assert (result.k, result.chosen_by) == (2, "given")
    assert set(result.assignments.tolist()) == {0, 1}
    assert result.silhouette is not None


def test_k_max_caps_the_search() -> None:
    vectors, _ = blobs(5)
    result = cluster(vectors, k_max=3)
    assert result.k <= 3


def test_clustering_is_deterministic() -> None:
    vectors, _ = blobs(4, noise=0.3, seed=3)
    first = cluster(vectors, random_state=7)
    second = cluster(vectors, random_state=7)
    np.testing.assert_array_equal(first.assignments, second.assignments)


def test_too_few_texts_or_too_many_clusters_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="at least two texts"):
        cluster(np.ones((1, 4)))
    with pytest.raises(InvalidInput, match="at least two texts"):
        cluster(np.ones((0, 4)))
    with pytest.raises(InvalidInput, match="cannot make 4 clusters from 3"):
        cluster(np.eye(3), k=4)
    with pytest.raises(InvalidInput):
        cluster(np.eye(3), k=0)


def test_two_texts_make_two_clusters_of_one() -> None:
    result = cluster(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert (result.k, result.chosen_by, result.silhouette) == (2, "only", None)
    assert sorted(result.assignments.tolist()) == [0, 1]


@pytest.mark.filterwarnings("error")
def test_identical_vectors_are_one_cluster_without_warnings() -> None:
    vectors = np.tile([0.2, 0.5, 0.1], (6, 1))
    result = cluster(vectors)
    assert (result.k, result.chosen_by, result.silhouette) == (1, "only", None)
    np.testing.assert_array_equal(result.assignments, np.zeros(6))
    given = cluster(vectors, k=3)
    assert given.k == 1  # duplicates cannot be split
    np.testing.assert_array_equal(given.assignments, np.zeros(6))


@pytest.mark.filterwarnings("error")
def test_duplicates_limit_k_to_the_distinct_rows() -> None:
    vectors = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    result = cluster(vectors)
    assert result.k == 2
    assert len(set(result.assignments[:3])) == 1
    assert result.assignments[0] != result.assignments[3]


def test_project_2d_shape_and_separation() -> None:
    vectors, truth = blobs(2, per_blob=10, dim=32)
    points = project_2d(vectors)
    assert points.shape == (20, 2)
    # The first principal axis separates the two groups.
    first = points[:, 0]
    assert (first[truth == 0].max() < first[truth == 1].min()) or (
        first[truth == 1].max() < first[truth == 0].min()
    )


def test_project_2d_tiny_inputs() -> None:
    np.testing.assert_array_equal(project_2d(np.ones((1, 5))), np.zeros((1, 2)))
    two = project_2d(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert two.shape == (2, 2)
    assert two[0, 0] == pytest.approx(-two[1, 0]) and abs(two[0, 0]) > 0.1
    np.testing.assert_array_equal(two[:, 1], [0.0, 0.0])
    np.testing.assert_array_equal(project_2d(np.tile([1.0, 2.0], (4, 1))), np.zeros((4, 2)))
    assert project_2d(np.array([[1.0], [-1.0], [2.0]])).shape == (3, 2)
