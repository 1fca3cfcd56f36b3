"""Cross-validated evaluation: the strategy switch, per-label figures, confusion matrix, abstention."""

from __future__ import annotations

import numpy as np
import pytest

from core.classify import Evaluation, LabelScore, evaluate
from core.classify.evaluation import LEAVE_ONE_OUT_LIMIT
from core.errors import InvalidInput, NotEnoughLabels


def labelled_blobs(
    counts: dict[str, int], *, dim: int = 16, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """`counts[name]` examples around the name's own orthogonal direction."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for position, (name, count) in enumerate(counts.items()):
        rows.append(np.eye(dim)[position] + rng.normal(scale=noise, size=(count, dim)))
        labels += [name] * count
    return np.concatenate(rows), labels


def scores(result: Evaluation) -> dict[str, LabelScore]:
    assert [s.label for s in result.per_label] == result.labels
    return {s.label: s for s in result.per_label}


def test_small_sets_use_leave_one_out() -> None:
    X, y = labelled_blobs({"a": 10, "b": 10, "c": 10})
    result = evaluate(X, y, method="centroid")
    assert (result.strategy, result.n, result.method) == ("leave-one-out", 30, "centroid")
    assert result.accuracy == 1.0
    assert len(result.predictions) == 30
    assert [p.best_label for p in result.predictions] == y
    np.testing.assert_array_equal(result.confusion, np.diag([10, 10, 10]))


def test_larger_sets_use_five_folds() -> None:
    X, y = labelled_blobs({"a": 40, "b": 40, "c": 40})
    assert len(y) > LEAVE_ONE_OUT_LIMIT
    result = evaluate(X, y, method="logreg")
    assert (result.strategy, result.n, result.method) == ("5-fold", 120, "logreg")
    assert result.accuracy == 1.0
    assert result.confusion.sum() == 120


def test_five_folds_still_work_when_a_label_is_too_small_to_stratify() -> None:
    X, y = labelled_blobs({"a": 60, "b": 60, "c": 2})
    result = evaluate(X, y, method="centroid")
    assert result.strategy == "5-fold"
    assert scores(result)["c"].support == 2
    assert result.confusion.sum() == 122


def test_a_misplaced_example_shows_in_the_confusion_matrix_and_per_label_scores() -> None:
    X, y = labelled_blobs({"a": 6, "b": 6, "c": 6})
    X[0] = np.eye(16)[1]  # an "a" example that looks exactly like a "b"
    result = evaluate(X, y, method="centroid")
    assert result.labels == ["a", "b", "c"]
    expected = np.array([[5, 1, 0], [0, 6, 0], [0, 0, 6]])
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.accuracy == pytest.approx(17 / 18)
    by_label = scores(result)
    assert by_label["a"].recall == pytest.approx(5 / 6)
    assert by_label["a"].precision == pytest.approx(1.0)
    assert by_label["b"].precision == pytest.approx(6 / 7)
    assert by_label["b"].recall == pytest.approx(1.0)
    assert by_label["b"].f1 == pytest.approx(2 * (6 / 7) / (6 / 7 + 1))
    assert [s.support for s in result.per_label] == [6, 6, 6]
    assert result.predictions[0].best_label == "b"


def test_a_label_with_one_example_cannot_be_recalled() -> None:
    X, y = labelled_blobs({"a": 5, "b": 5, "solo": 1})
    result = evaluate(X, y, method="centroid")
    assert scores(result)["solo"].recall == 0.0
    assert scores(result)["solo"].precision == 0.0  # zero_division=0, no warning
    assert result.confusion[2].sum() == 1 and result.confusion[2, 2] == 0


def test_two_labels_one_with_a_single_example_does_not_crash() -> None:
    X, y = labelled_blobs({"a": 5, "solo": 1})
    result = evaluate(X, y, method="logreg")
    lone = result.predictions[-1]
    assert lone.abstained and lone.best_label == "a" and lone.reason == "no other label to compare with"
    assert result.accuracy == pytest.approx(5 / 6)


def test_abstention_figures() -> None:
    X, y = labelled_blobs({"a": 8, "b": 8})
    # The calibrated rule answers about target_coverage (95%) of held-out examples; a quantile of 15
    # scores falls a little short of it on so small a set.
    answered = evaluate(X, y, method="centroid")
    assert 0.8 <= answered.coverage < 1.0 and answered.answered_accuracy == 1.0
    everything = evaluate(X, y, method="centroid", target_coverage=1.0)
    assert everything.target_coverage == 1.0 and everything.coverage >= answered.coverage
    silent = evaluate(X, y, method="centroid", min_similarity=1.01, min_margin=0.0)
    assert silent.coverage == 0.0 and silent.answered_accuracy is None
    assert silent.accuracy == 1.0  # argmax accuracy ignores abstention
    assert all(p.abstained for p in silent.predictions)


def test_coverage_counts_only_the_uncertain_examples() -> None:
    X, y = labelled_blobs({"a": 8, "b": 8}, noise=0.02)
    X[0] = (np.eye(16)[0] + np.eye(16)[1]) / np.sqrt(2)  # an "a" halfway to "b"
    result = evaluate(X, y, method="centroid", min_similarity=0.3, min_margin=0.05)
    assert result.coverage == pytest.approx(15 / 16)
    assert result.predictions[0].abstained
    assert result.answered_accuracy == 1.0


def test_auto_evaluates_the_method_auto_would_choose() -> None:
    rng = np.random.default_rng(0)
    eye = np.eye(12)
    # "a" is split in two opposite halves; the set's mean stays near zero, so centring keeps it so.
    parts = [eye[0], -eye[0], eye[1], eye[1], -eye[1], -eye[1]]
    X = np.concatenate([p + rng.normal(scale=0.05, size=(6, 12)) for p in parts])
    y = [name for name in "aabbcc" for _ in range(6)]
    result = evaluate(X, y, method="auto")
    assert result.method == "logreg"
    assert result.method_reason.startswith("logistic regression")
    assert result.accuracy > evaluate(X, y, method="centroid").accuracy


def test_invalid_evaluations() -> None:
    X, y = labelled_blobs({"a": 3, "b": 3})
    with pytest.raises(InvalidInput, match="method"):
        evaluate(X, y, method="forest")
    with pytest.raises(NotEnoughLabels):
        evaluate(X[:3], y[:3], method="centroid")
    with pytest.raises(InvalidInput):
        evaluate(X, y[:-1], method="centroid")
