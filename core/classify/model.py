"""Training a classifier on a label set's examples and predicting with abstention: the facade.

`train` takes the examples' embeddings and labels and returns a `TrainedModel`; its `predict`
returns one `Prediction` per vector. The method is "centroid" (nearest label centroid, softmax at
a calibrated temperature), "logreg" (logistic regression) or "auto" (whichever cross-validates
better on the set's own examples, the centroid on a tie or when a label has a single example).

Every method works in the set's own coordinates (vectors centred on the mean of its examples, see
`core.classify.abstention`), so an embedder whose cosines all sit higher gets the same answers.
"Not sure" comes from a threshold calibrated on the set's held-out examples (`target_coverage` of
them would be answered), and confidence is recalibrated on held-out probabilities and shrunk by
the number of examples behind it (`core.classify.confidence`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from core.classify.abstention import Abstention, centre, set_mean
from core.classify.calibration import DEFAULT_TEMPERATURE, leave_one_out_cosines, softmax
from core.classify.centroid import CentroidClassifier, encode_labels
from core.classify.confidence import ConfidenceCalibration, fit_confidence
from core.classify.logreg import logistic_regression
from core.errors import InvalidInput, NotEnoughLabels
from core.similarity import as_matrix, normalize_rows

METHODS = ("centroid", "logreg", "auto")
METHOD_NAMES = {"centroid": "centroid", "logreg": "logistic regression"}
#: At most this many folds when "auto" cross-validates the two methods.
AUTO_FOLDS = 5
LARGE_SET = 2000
#: The share of the set's own kind of text answered when nothing else is said (GEMBOT_TARGET_COVERAGE).
DEFAULT_COVERAGE = 0.98
#: The fewest examples an embedder did not train on that can calibrate a model on their own.
MIN_UNSEEN = 10


@dataclass(frozen=True)
class Prediction:
    """The answer for one text.

    `label` is the predicted label, or None when the model abstains (`reason` says why, in words
    a person can read); `best_label` is the most probable label either way and `confidence` its
    calibrated probability.
    `scores` holds the cosine to every label's centroid whatever the method, best first;
    `probabilities` the method's probability for every label, best first.
    """

    label: str | None
    best_label: str
    confidence: float
    scores: dict[str, float]
    probabilities: dict[str, float]
    method: str
    abstained: bool
    reason: str | None


def check_method(method: str) -> None:
    """InvalidInput unless `method` is one of METHODS."""
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def _check_training_data(X: np.ndarray, y: Sequence[str]) -> np.ndarray:
    points = as_matrix(X, name="X")
    if len(points) != len(y):
        raise InvalidInput(f"got {len(points)} vectors but {len(y)} labels")
    if not np.all(np.isfinite(points)):
        raise InvalidInput("the vectors contain NaN or infinite values")
    # Unit length for every method: logistic regression's C is tuned for it.
    return normalize_rows(points)


class TrainedModel:
    """A classifier fitted on a label set's examples, ready to predict.

    `labels` are sorted; `method` is the one actually used ("centroid" or "logreg") and
    `method_reason` says why; `temperature` is the centroid softmax temperature (None for logistic
    regression); `cv_scores` holds the cross-validated accuracy of each method when "auto" measured
    them (empty otherwise); `counts` the number of examples per label. `threshold` is the
    cosine to the nearest example below which it abstains,
    calibrated so that `target_coverage` of the set's held-out examples would be answered (None
    when the set is too small to hold any out); `calibration` recalibrates the method's
    probabilities into the confidence shown.
    """

    def __init__(
        self,
        *,
        method: str,
        method_reason: str,
        raw_centroid: CentroidClassifier,
        centroid: CentroidClassifier,
        logreg: LogisticRegression | None,
        cv_scores: dict[str, float],
        counts: dict[str, int],
        mean: np.ndarray,
        abstention: Abstention,
        calibration: ConfidenceCalibration,
    ) -> None:
        self.method = method
        self.method_reason = method_reason
        self.labels: list[str] = [str(label) for label in centroid.classes_]
        self.temperature: float | None = centroid.temperature_ if method == "centroid" else None
        self.cv_scores = cv_scores
        self.counts = counts
        self.dimensions = int(centroid.n_features_in_)
        self.abstention = abstention
        self.threshold = abstention.threshold
        self.target_coverage = abstention.target_coverage
        self.calibration = calibration
        self._raw_centroid = raw_centroid
        self._centroid = centroid
        self._logreg = logreg
        self._mean = mean

    def __repr__(self) -> str:
        return f"TrainedModel(method={self.method!r}, labels={len(self.labels)}, dim={self.dimensions})"

    def to_bytes(self) -> bytes:
        """The fitted model as bytes `from_bytes` reads back into one that predicts the same.

        An `.npz` archive of numpy arrays with the scalars and labels as JSON inside it, written
        and read without pickle, so the bytes can hold no code; it carries `MODEL_FORMAT`.
        """
        return _to_bytes(self)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedModel:
        """The model `to_bytes` wrote; UnknownModelFormat for another format number or damaged bytes."""
        return _from_bytes(blob)

    def _points(self, X: np.ndarray) -> np.ndarray:
        points = np.asarray(X, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, :]
        points = as_matrix(points, name="X")
        if points.shape[1] != self.dimensions:
            raise InvalidInput(
                f"the model was trained on {self.dimensions}-d vectors, not {points.shape[1]}-d ones"
            )
        return normalize_rows(points)

    def _raw_probabilities(self, centred: np.ndarray) -> np.ndarray:
        if self._logreg is not None:
            return np.asarray(self._logreg.predict_proba(centred))
        return self._centroid.predict_proba(centred)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """The calibrated probability of every label for every row, shape (n, len(labels))."""
        return self.calibration.apply(self._raw_probabilities(centre(self._points(X), self._mean)))

    def nearest(self, X: np.ndarray) -> np.ndarray:
        """Every row's cosine to the set's nearest example (the abstention score)."""
        return self.abstention.nearest(self._points(X))

    def predict(
        self, X: np.ndarray, *, min_similarity: float | None = None, min_margin: float | None = None
    ) -> list[Prediction]:
        """One `Prediction` per row of `X` (a single 1-D vector is also accepted).

        The model abstains (label None) when the text is less like its nearest example than all
        but the calibrated share of the set's own examples are (`threshold`). The optional
        overrides add two absolute rules: even the closest centroid has a cosine below
        `min_similarity`, or the two most probable labels are less than `min_margin` apart.
        """
        points = self._points(X)
        if len(points) == 0:
            return []
        cosines = self._raw_centroid.decision_function(points)
        centred = centre(points, self._mean)
        probabilities = self.calibration.apply(self._raw_probabilities(centred))
        nearest = self.abstention.nearest(points)
        rows = np.arange(len(points))
        by_probability = np.argsort(-probabilities, axis=1, kind="stable")
        by_cosine = np.argsort(-cosines, axis=1, kind="stable")
        first, second = by_probability[:, 0], by_probability[:, 1]
        confidence = probabilities[rows, first]
        margin = confidence - probabilities[rows, second]
        closest = cosines[rows, by_cosine[:, 0]]
        unlike = self.abstention.unlike(nearest)
        too_far = ~unlike & (closest < min_similarity if min_similarity is not None else False)
        too_close = ~unlike & ~too_far & (margin < min_margin if min_margin is not None else False)

        labels = self.labels
        predictions = []
        for r in range(len(points)):
            reason = None
            if unlike[r]:
                reason = (
                    "it is unlike this set's examples: further from the closest one than "
                    f"{self.target_coverage:.0%} of the set's own examples are from theirs"
                )
            elif too_far[r]:
                reason = f"closest label is only {closest[r]:.2f} similar"
            elif too_close[r]:
                a, b = first[r], second[r]
                reason = (
                    f"too close between {labels[a]} and {labels[b]} "
                    f"({probabilities[r, a]:.2f} vs {probabilities[r, b]:.2f})"
                )
            predictions.append(
                Prediction(
                    label=None if reason else labels[first[r]],
                    best_label=labels[first[r]],
                    confidence=float(confidence[r]),
                    scores={labels[c]: float(cosines[r, c]) for c in by_cosine[r]},
                    probabilities={labels[c]: float(probabilities[r, c]) for c in by_probability[r]},
                    method=self.method,
                    abstained=reason is not None,
                    reason=reason,
                )
            )
        return predictions


def _folds(n: int, smallest: int) -> int:
    # Large sets estimate accuracy well from fewer folds, and each logreg fit costs seconds there.
    return min(AUTO_FOLDS if n <= LARGE_SET else 3, smallest)


def _held_out_probabilities(
    estimator: CentroidClassifier | LogisticRegression, points: np.ndarray, y: np.ndarray, folds: int
) -> np.ndarray:
    """Every example's probabilities from the model of the fold that left it out (columns: sorted labels)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    return np.asarray(cross_val_predict(estimator, points, y, cv=splitter, method="predict_proba"))


def _choose(points: np.ndarray, y: Sequence[str]) -> tuple[str, str, dict[str, float], dict[str, np.ndarray]]:
    """`choose_method` on centred points; also the held-out probabilities of each method measured."""
    labels, index = encode_labels(y)
    counts = np.bincount(index, minlength=len(labels))
    smallest = int(counts.min())
    if smallest < 2:
        lonely = str(labels[int(np.argmin(counts))])
        return (
            "centroid",
            f"centroid, because {lonely} has only one example: too few to compare methods",
            {},
            {},
        )
    folds = _folds(len(points), smallest)
    labels_array = np.asarray(y)
    # Accuracy does not depend on the temperature, so skip calibrating it in every fold.
    held_out = {
        "centroid": _held_out_probabilities(
            CentroidClassifier(temperature=DEFAULT_TEMPERATURE), points, labels_array, folds
        ),
        "logreg": _held_out_probabilities(logistic_regression(), points, labels_array, folds),
    }
    scores = {name: float(np.mean(np.argmax(p, axis=1) == index)) for name, p in held_out.items()}
    chosen = "logreg" if scores["logreg"] > scores["centroid"] else "centroid"
    other = "centroid" if chosen == "logreg" else "logreg"
    verdict = "a tie goes to the centroid" if scores["logreg"] == scores["centroid"] else "better"
    reason = (
        f"{METHOD_NAMES[chosen]}: {scores[chosen]:.0%} accuracy vs {scores[other]:.0%} for "
        f"{METHOD_NAMES[other]} in {folds}-fold cross-validation ({verdict})"
    )
    return chosen, reason, scores, held_out


def choose_method(
    X: np.ndarray, y: Sequence[str], *, temperature: float | None = None
) -> tuple[str, str, dict[str, float]]:
    """What "auto" picks for these examples: (method, reason, cross-validated accuracy per method).

    Stratified k-fold with k = min(5, the smallest label's count), 3 folds above LARGE_SET
    examples, in the set's own coordinates. When some label has a single example nothing can be
    cross-validated and the centroid, which works from one example, is used.
    A tie goes to the centroid: it is cheaper and its confidence is calibrated.
    """
    points = _check_training_data(X, y)
    method, reason, scores, _ = _choose(centre(points, set_mean(points)), y)
    return method, reason, scores


def _confidence(
    method: str,
    centred: np.ndarray,
    y: Sequence[str],
    centroid: CentroidClassifier,
    held_out: dict[str, np.ndarray],
    counts: np.ndarray,
    judged: np.ndarray,
) -> ConfidenceCalibration:
    """The confidence recalibration, fitted on probabilities of examples each held out of its
    model; only the rows in `judged` (a boolean mask) count."""
    index = encode_labels(y)[1]
    if method == "centroid":
        # Leave-one-out centroids are exact and cheap; a label's only example cannot be left out.
        cosines, targets = leave_one_out_cosines(centred, y)
        usable = judged[counts[index] >= 2]
        return fit_confidence(softmax(cosines[usable], centroid.temperature_), targets[usable], counts)
    smallest = int(counts.min())
    if "logreg" not in held_out and smallest >= 2:
        held_out = {
            "logreg": _held_out_probabilities(
                logistic_regression(), centred, np.asarray(y), _folds(len(centred), smallest)
            )
        }
    if "logreg" not in held_out:
        return fit_confidence(np.zeros((0, len(counts))), np.zeros(0, dtype=np.int64), counts)
    return fit_confidence(held_out["logreg"][judged], index[judged], counts)


def train(
    X: np.ndarray,
    y: Sequence[str],
    *,
    method: str = "auto",
    temperature: float | None = None,
    target_coverage: float = DEFAULT_COVERAGE,
    seen: np.ndarray | None = None,
) -> TrainedModel:
    """Fit a classifier on embeddings `X` (one row per example) and their labels `y`.

    `method` is "centroid", "logreg" or "auto" (see `choose_method`); anything else is
    InvalidInput. `temperature` fixes the centroid softmax temperature; None calibrates it on the
    examples. `target_coverage` (in (0, 1]) is the share of the set's held-out examples the model
    would answer, which sets its abstention threshold. Fewer than two distinct labels raises
    NotEnoughLabels.

    `seen` marks the examples the embedder itself was trained on (a tuned encoder): they sit
    closer to each other than any new text will, so the threshold and the confidence are
    calibrated on the other examples only, when there are at least `MIN_UNSEEN` of them.
    """
    check_method(method)
    if temperature is not None and temperature <= 0:
        raise InvalidInput("the temperature must be above 0")
    if not 0 < target_coverage <= 1:
        raise InvalidInput(f"the target coverage must be in (0, 1], not {target_coverage}")
    points = _check_training_data(X, y)
    labels, index = encode_labels(y)
    if len(labels) < 2:
        have = f"only {labels[0]!s} has any" if len(labels) else "none have any"
        raise NotEnoughLabels(f"classification needs at least two labels with examples; {have}")
    count_array = np.bincount(index, minlength=len(labels))
    counts = {str(label): int(c) for label, c in zip(labels, count_array, strict=True)}
    mean = set_mean(points)
    centred = centre(points, mean)

    cv_scores: dict[str, float] = {}
    held_out: dict[str, np.ndarray] = {}
    if method == "auto":
        method, reason, cv_scores, held_out = _choose(centred, y)
    else:
        reason = f"{METHOD_NAMES[method]}, as asked"

    labels_array = np.asarray(y)
    # The plain centroids give every prediction its readable cosines, whatever the method.
    raw_centroid = CentroidClassifier(temperature=DEFAULT_TEMPERATURE).fit(points, labels_array)
    if method == "centroid":
        centroid = CentroidClassifier(temperature=temperature).fit(centred, labels_array)
        logreg = None
    else:
        centroid = CentroidClassifier(temperature=DEFAULT_TEMPERATURE).fit(centred, labels_array)
        logreg = logistic_regression().fit(centred, labels_array)
    judged = np.ones(len(points), dtype=bool)
    if seen is not None:
        unseen = ~np.asarray(seen, dtype=bool).reshape(-1)
        if len(unseen) != len(points):
            raise InvalidInput(f"got {len(unseen)} seen marks for {len(points)} examples")
        if unseen.sum() >= MIN_UNSEEN:
            judged = unseen
    calibration = _confidence(method, centred, y, centroid, held_out, count_array, judged)
    return TrainedModel(
        method=method,
        method_reason=reason,
        raw_centroid=raw_centroid,
        centroid=centroid,
        logreg=logreg,
        cv_scores=cv_scores,
        counts=counts,
        mean=mean,
        abstention=Abstention.calibrate(points, target_coverage=target_coverage, judged=judged),
        calibration=calibration,
    )


# -- keeping a fitted model: bytes that hold arrays and plain values, never code ------------------

#: The layout `TrainedModel.to_bytes` writes. Bump it whenever that layout or the meaning of a
#: field changes: a model kept under another number is retrained, never read.
MODEL_FORMAT = 1


class UnknownModelFormat(InvalidInput):
    """Bytes that are not a model `TrainedModel.from_bytes` can read (another format number, or
    damaged): the model is to be trained again."""


def _to_bytes(model: TrainedModel) -> bytes:
    """`TrainedModel.to_bytes`: an `.npz` archive of the arrays, with the rest as JSON in it."""
    arrays: dict[str, np.ndarray] = {
        "raw_centroids": np.asarray(model._raw_centroid.centroids_),
        "centroids": np.asarray(model._centroid.centroids_),
        "mean": np.asarray(model._mean),
        "examples": np.asarray(model.abstention.examples),
    }
    logreg: dict[str, object] | None = None
    if model._logreg is not None:
        arrays["logreg_coef"] = np.asarray(model._logreg.coef_)
        arrays["logreg_intercept"] = np.asarray(model._logreg.intercept_)
        arrays["logreg_n_iter"] = np.asarray(model._logreg.n_iter_)
        logreg = {"C": float(model._logreg.C), "max_iter": int(model._logreg.max_iter)}
    meta = {
        "format": MODEL_FORMAT,
        "method": model.method,
        "method_reason": model.method_reason,
        "labels": model.labels,
        "cv_scores": model.cv_scores,
        "counts": model.counts,
        "dimensions": model.dimensions,
        "threshold": model.threshold,
        "target_coverage": model.target_coverage,
        "calibration": {
            "temperature": model.calibration.temperature,
            "counts": list(model.calibration.counts),
        },
        "raw_centroid": {
            "temperature": model._raw_centroid.temperature,
            "temperature_": model._raw_centroid.temperature_,
        },
        "centroid": {
            "temperature": model._centroid.temperature,
            "temperature_": model._centroid.temperature_,
        },
        "logreg": logreg,
    }
    # Python's JSON writes every float in full (repr), so the scalars come back bit for bit.
    arrays["meta"] = np.frombuffer(json.dumps(meta, allow_nan=False).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **arrays)
    return out.getvalue()


def _centroid_from(state: dict[str, Any], labels: list[str], centroids: np.ndarray) -> CentroidClassifier:
    restored = CentroidClassifier(temperature=state["temperature"])
    restored.classes_ = np.asarray(labels)
    restored.centroids_ = centroids
    restored.n_features_in_ = int(centroids.shape[1])
    restored.temperature_ = float(state["temperature_"])
    return restored


def _from_bytes(blob: bytes) -> TrainedModel:
    """`TrainedModel.from_bytes`."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes())
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise UnknownModelFormat(f"not a kept model: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise UnknownModelFormat(f"a kept model in format {found!r}, not {MODEL_FORMAT}")
    try:
        labels = [str(label) for label in meta["labels"]]
        logreg = None
        if meta["logreg"] is not None:
            logreg = logistic_regression(C=float(meta["logreg"]["C"]))
            logreg.max_iter = int(meta["logreg"]["max_iter"])
            logreg.classes_ = np.asarray(labels)
            logreg.coef_ = arrays["logreg_coef"]
            logreg.intercept_ = arrays["logreg_intercept"]
            logreg.n_iter_ = arrays["logreg_n_iter"]
            logreg.n_features_in_ = int(logreg.coef_.shape[1])
        model = TrainedModel(
            method=str(meta["method"]),
            method_reason=str(meta["method_reason"]),
            raw_centroid=_centroid_from(meta["raw_centroid"], labels, arrays["raw_centroids"]),
            centroid=_centroid_from(meta["centroid"], labels, arrays["centroids"]),
            logreg=logreg,
            cv_scores={str(k): float(v) for k, v in meta["cv_scores"].items()},
            counts={str(k): int(v) for k, v in meta["counts"].items()},
            mean=arrays["mean"],
            abstention=Abstention(
                examples=arrays["examples"],
                threshold=None if meta["threshold"] is None else float(meta["threshold"]),
                target_coverage=float(meta["target_coverage"]),
            ),
            calibration=ConfidenceCalibration(
                float(meta["calibration"]["temperature"]),
                tuple(int(c) for c in meta["calibration"]["counts"]),
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UnknownModelFormat(f"a damaged kept model: {exc!r}") from exc
    n, d = len(labels), int(meta["dimensions"])
    shapes = [
        (arrays["raw_centroids"].shape, (n, d)),
        (arrays["centroids"].shape, (n, d)),
        (arrays["mean"].shape, (d,)),
        (arrays["examples"].shape[1:], (d,)),
        ((len(model.counts), len(model.calibration.counts)), (n, n)),
    ]
    if logreg is not None:
        shapes.append((logreg.coef_.shape, (1 if n == 2 else n, d)))
    if list(model.counts) != labels or any(found != expected for found, expected in shapes):
        raise UnknownModelFormat("a damaged kept model: its labels and arrays do not match")
    return model
