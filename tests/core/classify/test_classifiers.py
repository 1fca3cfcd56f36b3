"""Centroid math, temperature calibration, logistic regression, the "auto" choice and abstention."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict, cross_val_score

from core.classify import CentroidClassifier, Prediction, calibrate_temperature, train
from core.classify.calibration import DEFAULT_TEMPERATURE, leave_one_out_cosines, softmax
from core.classify.centroid import centroids
from core.errors import InvalidInput, NotEnoughLabels

R = 1 / np.sqrt(2)


def labelled_blobs(
    names: tuple[str, ...] = ("billing", "bug", "praise"),
    per_label: int = 8,
    *,
    dim: int = 16,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One tight group per label around orthogonal directions: (vectors, labels, centres)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[: len(names)]
    index = np.repeat(np.arange(len(names)), per_label)
    vectors = centres[index] + rng.normal(scale=noise, size=(len(index), dim))
    return vectors, [names[i] for i in index], centres


def split_label(per_part: int = 6, *, dim: int = 12, noise: float = 0.05, seed: int = 0):
    """Label "a" lives in two opposite sub-clusters (+e0 and -e0): its centroid is near zero and
    useless, but a linear model with an intercept still separates it from "b" (e1) and "c" (-e1).
    The set's mean is near zero too, so centring on it (the set's own coordinates) leaves that so."""
    rng = np.random.default_rng(seed)
    eye = np.eye(dim)
    parts = [eye[0], -eye[0], eye[1], eye[1], -eye[1], -eye[1]]
    names = ["a", "a", "b", "b", "c", "c"]
    vectors = np.concatenate([p + rng.normal(scale=noise, size=(per_part, dim)) for p in parts])
    labels = [n for n in names for _ in range(per_part)]
    return vectors, labels


# --- centroid math -----------------------------------------------------------------------------


def test_centroids_match_a_hand_computation() -> None:
    # Examples are normalised first: [2, 0] counts as [1, 0].
    X = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    result = centroids(X, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(result, [[R, R, 0.0], [0.0, 0.0, 1.0]])


def test_centroid_classifier_scores_are_cosines_to_centroids() -> None:
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.6, 0.8]])
    model = CentroidClassifier(temperature=0.1).fit(X, ["x", "x", "y", "y"])
    assert list(model.classes_) == ["x", "y"]
    # centroid x = (1, 1, 0)/√2; centroid y = (0, 0.6, 1.8)/|.| = (0, 1, 3)/√10
    query = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    expected = np.array([[R, 0.0], [0.0, 3 / np.sqrt(10)]])
    np.testing.assert_allclose(model.decision_function(query), expected)
    assert list(model.predict(query)) == ["x", "y"]
    np.testing.assert_allclose(model.predict_proba(query), softmax(expected, 0.1))


def test_softmax_temperature_and_stability() -> None:
    scores = np.array([[0.6, 0.3, 0.3]])
    plain = softmax(scores, 1.0)
    np.testing.assert_allclose(plain.sum(), 1.0)
    assert plain.max() < 0.45  # the near-uniform softmax that makes raw cosines useless
    sharp = softmax(scores, 0.05)
    assert sharp[0, 0] > 0.99
    assert np.isfinite(softmax(np.array([[1.0, -1.0]]), 1e-4)).all()
    with pytest.raises(InvalidInput):
        softmax(scores, 0.0)


def test_centroid_classifier_works_with_sklearn_model_selection() -> None:
    X, y, _ = labelled_blobs()
    estimator = CentroidClassifier()
    assert clone(estimator).get_params() == {"temperature": None}
    assert cross_val_score(estimator, X, y, cv=4).mean() == pytest.approx(1.0)
    assert list(cross_val_predict(estimator, X, y, cv=4)) == y
    probabilities = cross_val_predict(estimator, X, y, cv=4, method="predict_proba")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


# --- calibration -------------------------------------------------------------------------------


def test_leave_one_out_cosines_match_refitting_without_each_example() -> None:
    X, y, _ = labelled_blobs(per_label=4, noise=0.5, seed=2)
    X, y = X[:-3], y[:-3]  # "praise" keeps a single example: its row cannot be left out
    cosines, targets = leave_one_out_cosines(X, y)
    assert len(cosines) == len(X) - 1
    kept = [i for i, label in enumerate(y) if label != "praise"]
    for row, i in enumerate(kept):
        rest = np.delete(np.arange(len(X)), i)
        refit = CentroidClassifier(temperature=1.0).fit(X[rest], [y[j] for j in rest])
        np.testing.assert_allclose(cosines[row], refit.decision_function(X[i : i + 1])[0], atol=1e-9)
        assert refit.classes_[targets[row]] == y[i]


def test_calibrated_temperature_is_confident_where_plain_softmax_is_not() -> None:
    # Like sentence embeddings, every vector shares a common direction, so even unrelated texts
    # have cosines around 0.7 and a clear match stands out by only ~0.25.
    X, y, centres = labelled_blobs(per_label=10, noise=0.1)
    common = np.zeros(16)
    common[15] = 1.5
    X, centres = X + common, centres + common
    temperature = calibrate_temperature(X, y)
    assert 0.005 <= temperature < 0.1
    queries = centres + np.random.default_rng(9).normal(scale=0.1, size=centres.shape)
    calibrated = CentroidClassifier(temperature=temperature).fit(X, y).predict_proba(queries)
    plain = CentroidClassifier(temperature=1.0).fit(X, y).predict_proba(queries)
    diagonal = np.arange(3)
    assert calibrated[diagonal, diagonal].min() > 0.8
    assert plain.max() < 0.45  # three labels: near 1/3 each
    assert (plain.argmax(axis=1) == diagonal).all()  # right, but says nothing about confidence


def test_calibration_is_honest_on_overlapping_labels() -> None:
    # Heavily overlapping labels: a well-fitted temperature must not claim near-certainty.
    X, y, _ = labelled_blobs(per_label=20, noise=1.0, seed=4)
    model = CentroidClassifier().fit(X, y)
    assert model.temperature_ > 0.05
    assert model.predict_proba(X).max(axis=1).mean() < 0.9


def test_calibration_falls_back_with_too_little_data() -> None:
    X = np.eye(4)
    assert calibrate_temperature(X, ["a", "b", "c", "d"]) == DEFAULT_TEMPERATURE  # no label repeats
    assert calibrate_temperature(X[:3], ["a", "a", "b"]) == DEFAULT_TEMPERATURE  # 2 usable rows
    assert CentroidClassifier().fit(X, ["a", "b", "c", "d"]).temperature_ == DEFAULT_TEMPERATURE


# --- train and predict -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["centroid", "logreg"])
def test_both_methods_learn_separable_data(method: str) -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method=method)
    assert model.method == method
    assert model.labels == ["billing", "bug", "praise"]
    assert model.counts == {"billing": 8, "bug": 8, "praise": 8}
    queries = centres + np.random.default_rng(5).normal(scale=0.1, size=centres.shape)
    predictions = model.predict(queries, min_similarity=0.3, min_margin=0.05)
    assert [p.label for p in predictions] == ["billing", "bug", "praise"]
    assert all(p.confidence > 0.6 and not p.abstained and p.reason is None for p in predictions)
    assert (model.temperature is None) == (method == "logreg")


def test_prediction_fields() -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method="centroid", temperature=0.05)
    (prediction,) = model.predict(centres[1], min_similarity=0.3, min_margin=0.05)
    assert isinstance(prediction, Prediction)
    assert prediction.label == prediction.best_label == "bug"
    cosines = list(prediction.scores.values())
    assert cosines == sorted(cosines, reverse=True)
    assert next(iter(prediction.scores)) == "bug" and set(prediction.scores) == set(model.labels)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert next(iter(prediction.probabilities)) == "bug"
    assert prediction.confidence == prediction.probabilities["bug"]
    assert prediction.method == "centroid"


def test_logreg_probabilities_with_centroid_cosines() -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method="logreg")
    (prediction,) = model.predict(centres[0], min_similarity=0.3, min_margin=0.05)
    # Scores are cosines to centroids whatever the method: close to 1 for the own label, ~0 else.
    assert prediction.scores["billing"] > 0.9
    assert abs(prediction.scores["praise"]) < 0.3
    assert prediction.method == "logreg"
    np.testing.assert_allclose(model.probabilities(centres).sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["centroid", "logreg"])
def test_abstains_on_an_out_of_domain_vector(method: str) -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method=method)
    unrelated = np.zeros(16)
    unrelated[10] = 1.0  # orthogonal to every label's direction
    (prediction, *clear) = model.predict(np.vstack([unrelated, centres]))
    assert prediction.abstained and prediction.label is None
    assert prediction.reason is not None and prediction.reason.startswith("it is unlike this set's examples")
    assert prediction.best_label in model.labels
    assert [p.label for p in clear] == model.labels


def test_the_absolute_similarity_override_still_applies() -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method="centroid")
    (plain,) = model.predict(centres[0])
    (refused,) = model.predict(centres[0], min_similarity=1.01)
    assert not plain.abstained
    assert refused.abstained and refused.reason is not None
    assert refused.reason.startswith("closest label is only")


@pytest.mark.parametrize("method", ["centroid", "logreg"])
def test_abstains_when_two_labels_tie(method: str) -> None:
    X, y, centres = labelled_blobs(noise=0.02)
    between = (centres[0] + centres[1]) / np.sqrt(2)
    # Some of the set's own examples sit between the two labels, so the midpoint is not unlike
    # the set (the calibrated rule answers it) and only the margin override can refuse it.
    rng = np.random.default_rng(3)
    X = np.vstack([X, between + rng.normal(scale=0.02, size=(4, 16))])
    y = [*y, "billing", "bug", "billing", "bug"]
    model = train(X, y, method=method)
    # Calibrated, shrunk probabilities of a midpoint are close but not equal.
    (prediction,) = model.predict(between, min_margin=0.3)
    assert prediction.abstained and prediction.label is None
    assert prediction.reason is not None and prediction.reason.startswith("too close between")
    assert {"billing", "bug"} <= set(prediction.reason.split())


def test_predict_is_vectorised_over_a_batch_and_checks_dimensions() -> None:
    X, y, centres = labelled_blobs()
    model = train(X, y, method="centroid")
    batch = np.repeat(centres, 50, axis=0)
    predictions = model.predict(batch, min_similarity=0.3, min_margin=0.05)
    assert [p.label for p in predictions] == [name for name in model.labels for _ in range(50)]
    assert model.predict(np.zeros((0, 16)), min_similarity=0.3, min_margin=0.05) == []
    with pytest.raises(InvalidInput, match="16-d"):
        model.predict(np.ones((1, 5)), min_similarity=0.3, min_margin=0.05)


def test_auto_picks_logreg_where_centroids_fail() -> None:
    X, y = split_label()
    centroid_only = train(X, y, method="centroid")
    assert centroid_only.cv_scores == {}
    model = train(X, y, method="auto")
    assert model.method == "logreg"
    assert model.cv_scores["logreg"] > model.cv_scores["centroid"] + 0.2
    assert model.method_reason.startswith("logistic regression")
    assert "5-fold" in model.method_reason


def test_auto_prefers_the_centroid_on_a_tie() -> None:
    X, y, _ = labelled_blobs(per_label=4)
    model = train(X, y, method="auto")
    assert model.cv_scores == {"centroid": 1.0, "logreg": 1.0}
    assert model.method == "centroid"
    assert "4-fold" in model.method_reason and "tie" in model.method_reason
    assert model.temperature is not None


def test_auto_uses_the_centroid_when_a_label_has_one_example() -> None:
    X, y = split_label()
    X, y = np.vstack([X, np.eye(12)[5]]), [*y, "lonely"]
    model = train(X, y, method="auto")
    assert model.method == "centroid"
    assert "lonely" in model.method_reason and "one example" in model.method_reason
    assert model.cv_scores == {}


def test_not_enough_labels() -> None:
    with pytest.raises(NotEnoughLabels, match="at least two labels"):
        train(np.eye(3), ["a", "a", "a"])
    with pytest.raises(NotEnoughLabels):
        train(np.zeros((0, 3)), [])


def test_invalid_arguments() -> None:
    X, y, _ = labelled_blobs()
    with pytest.raises(InvalidInput, match="method"):
        train(X, y, method="knn")
    with pytest.raises(InvalidInput, match="temperature"):
        train(X, y, temperature=0.0)
    with pytest.raises(InvalidInput, match="labels"):
        train(X, y[:-1])
    with pytest.raises(InvalidInput, match="NaN"):
        train(np.full((2, 3), np.nan), ["a", "b"])


def test_given_temperature_is_kept() -> None:
    X, y, _ = labelled_blobs()
    assert train(X, y, method="centroid", temperature=0.5).temperature == 0.5
    assert train(X, y, method="centroid").temperature != 0.5
