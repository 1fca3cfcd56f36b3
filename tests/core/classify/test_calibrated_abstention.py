"""The calibrated "not sure" and honest confidence: scale invariance, coverage, evidence, ECE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.classify import train
from core.classify.abstention import centre, conformal_threshold, held_out_nearest_similarity, set_mean
from core.classify.confidence import expected_calibration_error, fit_confidence, shrink
from core.errors import InvalidInput
from core.settings import Settings
from core.similarity import normalize_rows


def blobs(per_label: int, *, labels: int = 4, dim: int = 24, noise: float = 0.35, seed: int = 0):
    """Overlapping groups around random directions: some examples are hard, as in real sets."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(size=(labels, dim)))
    index = np.repeat(np.arange(labels), per_label)
    X = normalize_rows(centres[index] + rng.normal(scale=noise, size=(len(index), dim)))
    return X, [f"label{i}" for i in index], centres


def gemini_scale(X: np.ndarray) -> np.ndarray:
    """Unit vectors whose pairwise cosines are 0.6 + 0.4 × the originals' (a shared extra component)."""
    shared = np.full((len(X), 1), np.sqrt(0.6))
    return normalize_rows(np.hstack([np.sqrt(0.4) * normalize_rows(X), shared]))


def test_the_transform_maps_every_cosine_as_claimed() -> None:
    X, _, _ = blobs(5)
    unit = normalize_rows(X)
    np.testing.assert_allclose(gemini_scale(X) @ gemini_scale(X).T, 0.6 + 0.4 * unit @ unit.T, atol=1e-12)


@pytest.mark.parametrize("method", ["centroid", "logreg", "auto"])
@pytest.mark.parametrize("per_label", [3, 12])
def test_same_decisions_whatever_the_embedding_scale(method: str, per_label: int) -> None:
    X, y, centres = blobs(per_label)
    rng = np.random.default_rng(7)
    # Queries near the labels, between them, and unrelated: the mix a set meets in use.
    queries = np.vstack(
        [
            normalize_rows(centres[rng.integers(0, 4, 30)] + rng.normal(scale=0.4, size=(30, 24))),
            normalize_rows(rng.normal(size=(20, 24))),
        ]
    )
    low = train(X, y, method=method).predict(queries)
    high = train(gemini_scale(X), y, method=method).predict(gemini_scale(queries))
    assert [p.label for p in low] == [p.label for p in high]
    assert [p.abstained for p in low] == [p.abstained for p in high]
    assert [p.best_label for p in low] == [p.best_label for p in high]
    np.testing.assert_allclose([p.confidence for p in low], [p.confidence for p in high], atol=2e-3)
    # The test means something: both kinds of answer occur, and the raw cosines did move.
    assert any(p.abstained for p in low) and not all(p.abstained for p in low)
    closest_high = min(next(iter(p.scores.values())) for p in high)
    assert closest_high > 0.5 > min(next(iter(p.scores.values())) for p in low)


def test_an_absolute_cosine_threshold_is_not_scale_invariant() -> None:
    # The control for the test above: the old rule (closest centroid below 0.35) flips with scale.
    X, y, _ = blobs(3)
    queries = normalize_rows(np.random.default_rng(1).normal(size=(20, 24)))
    low = train(X, y, method="centroid").predict(queries, min_similarity=0.35)
    high = train(gemini_scale(X), y, method="centroid").predict(gemini_scale(queries), min_similarity=0.35)
    assert [p.reason for p in low if p.abstained] != [p.reason for p in high if p.abstained]
    assert sum(p.reason is not None and "closest label" in p.reason for p in high) == 0


def test_centring_cancels_a_shared_component() -> None:
    X, _, _ = blobs(3)
    np.testing.assert_allclose(
        centre(X, set_mean(X)), centre(gemini_scale(X), set_mean(gemini_scale(X)))[:, :-1], atol=1e-10
    )


def test_threshold_answers_the_target_share_of_held_out_examples() -> None:
    scores = np.arange(100.0)
    assert conformal_threshold(scores, 0.95) == pytest.approx(4.95)
    assert np.mean(scores >= conformal_threshold(scores, 0.95)) == 0.95
    # Affine in the scores, so the decisions never move with the scale.
    moved = conformal_threshold(0.6 + 0.4 * scores, 0.8)
    assert moved == pytest.approx(0.6 + 0.4 * conformal_threshold(scores, 0.8))
    with pytest.raises(InvalidInput):
        conformal_threshold(scores, 0.0)
    with pytest.raises(InvalidInput):
        conformal_threshold(np.array([]), 0.9)


def test_held_out_nearest_leaves_each_example_out() -> None:
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(held_out_nearest_similarity(X), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("coverage", [0.8, 0.95])
def test_fresh_text_like_the_set_is_answered_at_about_the_target_coverage(coverage: float) -> None:
    X, y, centres = blobs(60, dim=64, noise=0.1, seed=2)
    rng = np.random.default_rng(11)
    index = rng.integers(0, 4, 600)
    fresh = normalize_rows(centres[index] + rng.normal(scale=0.1, size=(600, 64)))
    model = train(X, y, method="centroid", target_coverage=coverage)
    answered = np.mean([not p.abstained for p in model.predict(fresh)])
    assert abs(answered - coverage) < 0.05
    unrelated = model.predict(normalize_rows(rng.normal(size=(200, 64))))
    assert np.mean([p.abstained for p in unrelated]) > 0.9


def test_the_reason_is_in_words() -> None:
    X, y, _ = blobs(6, dim=64, noise=0.1)
    (p,) = train(X, y).predict(normalize_rows(np.random.default_rng(4).normal(size=(1, 64))))
    assert p.abstained and p.reason is not None and "unlike this set's examples" in p.reason


# --- confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["centroid", "logreg", "auto"])
def test_three_examples_per_label_never_show_100_percent(method: str) -> None:
    X, y, centres = blobs(3, noise=0.05)
    model = train(X, y, method=method)
    # Even a query exactly on an example or a centre: evidence from three examples caps belief.
    predictions = model.predict(np.vstack([X, centres]))
    assert max(p.confidence for p in predictions) <= 3 / 4 + 1 / (4 * 4) + 1e-9
    assert all(p.label == p.best_label for p in predictions[: len(X)])


def test_more_evidence_allows_more_confidence() -> None:
    X3, y3, centres = blobs(3, noise=0.05)
    X40, y40, _ = blobs(40, noise=0.05)
    few = max(p.confidence for p in train(X3, y3, method="centroid").predict(centres))
    many = max(p.confidence for p in train(X40, y40, method="centroid").predict(centres))
    assert many > 0.95 > few


def test_shrink_mixes_with_uniform_by_the_predicted_labels_count() -> None:
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(shrink(p, np.array([3, 1])), [[0.75 + 0.125, 0.125], [0.25, 0.75]])


def test_calibrated_confidence_is_right_as_often_as_it_says() -> None:
    X, y, _ = blobs(80, labels=6, noise=0.6, seed=5)
    rng = np.random.default_rng(9)
    _, _, centres = blobs(1, labels=6, seed=5)
    index = rng.integers(0, 6, 3000)
    fresh = normalize_rows(centres[index] + rng.normal(scale=0.6, size=(3000, 24)))
    truth = np.array([f"label{i}" for i in index])
    for method in ("centroid", "logreg"):
        predictions = train(X, y, method=method).predict(fresh)
        confidence = np.array([p.confidence for p in predictions])
        correct = np.array([p.best_label for p in predictions]) == truth
        assert 0.3 < correct.mean() < 0.95  # a set where calibration matters
        assert expected_calibration_error(confidence, correct) < 0.06


def test_fit_confidence_flattens_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    # Claims 99% but is right half the time.
    held = np.tile([0.99, 0.01], (200, 1))
    targets = rng.integers(0, 2, 200)
    fitted = fit_confidence(held, targets, np.array([100, 100]))
    assert fitted.temperature > 1
    assert fitted.apply(held)[0, 0] == pytest.approx(0.5, abs=0.1)


def test_expected_calibration_error_by_hand() -> None:
    # Bin 0.9-1.0: confidences 0.9, 0.9, right once → |0.5 - 0.9| × 2/4; bin 0.6: 0.6 right → 0.4 × 1/4;
    # bin 0.3: 0.3 wrong → 0.3 × 1/4.
    confidence = np.array([0.9, 0.9, 0.6, 0.3])
    correct = np.array([True, False, True, False])
    expected = 0.4 * 0.5 + 0.4 * 0.25 + 0.3 * 0.25
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    seven_of_ten = np.array([True] * 7 + [False] * 3)
    assert expected_calibration_error(np.full(10, 0.7), seven_of_ten) == pytest.approx(0)
    with pytest.raises(InvalidInput):
        expected_calibration_error(np.array([]), np.array([]))


def test_absolute_overrides_are_unset_by_default_and_parse_when_given(tmp_path: Path) -> None:
    unset = Settings.from_env(
        {"GEMBOT_MIN_SIMILARITY": "", "GEMBOT_MIN_MARGIN": " "}, dotenv=tmp_path / ".env"
    )
    assert unset.min_similarity is None and unset.min_margin is None
    given = Settings.from_env(
        {"GEMBOT_MIN_SIMILARITY": "0.4", "GEMBOT_MIN_MARGIN": "0.1"}, dotenv=tmp_path / ".env"
    )
    assert (given.min_similarity, given.min_margin) == (0.4, 0.1)
    with pytest.raises(InvalidInput, match="GEMBOT_MIN_MARGIN"):
        Settings.from_env({"GEMBOT_MIN_MARGIN": "lots"}, dotenv=tmp_path / ".env")
