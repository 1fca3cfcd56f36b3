"""Classifying texts against a label set's examples: centroid or logistic regression, with abstention."""

from core.classify.calibration import DEFAULT_TEMPERATURE, calibrate_temperature
from core.classify.centroid import CentroidClassifier
from core.classify.evaluation import Evaluation, LabelScore, evaluate
from core.classify.model import METHODS, Prediction, TrainedModel, choose_method, train

__all__ = [
    "DEFAULT_TEMPERATURE",
    "METHODS",
    "CentroidClassifier",
    "Evaluation",
    "LabelScore",
    "Prediction",
    "TrainedModel",
    "calibrate_temperature",
    "choose_method",
    "evaluate",
    "train",
]
