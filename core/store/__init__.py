"""Where Gembot keeps its data: label sets and examples, the embedding cache, the classification log,
Slack event claims, thread conversations, the evaluation history, bulk jobs, Gemini's answers
for unsure classifications, fitted classifiers, tuned encoders with their re-tune jobs, and
Gemini's answers in Slack with the feedback people gave them.

Callers use `Store` and the plain records below; the ORM models and Alembic plumbing stay inside
this package.
"""

from core.store.answers import ModelRating
from core.store.db import current_revision, head_revision, make_engine, upgrade
from core.store.escalations import EscalationKey, EscalationRecord
from core.store.experiments import BatchRecord, CachedReply, ExperimentRecord, Grade, ResultRecord
from core.store.jobs import ClassificationLog, JobRecord, LeaseLost
from core.store.records import (
    AddResult,
    CacheKey,
    ClassificationRecord,
    EvaluationRecord,
    ExampleInput,
    ExampleRecord,
    LabelChangeRecord,
    SetSummary,
    TrainingData,
    TunedEncoderInfo,
    TunedEncoderInput,
    TuneJob,
    TurnImageRecord,
    TurnRecord,
    text_hash,
)
from core.store.repository import Store
from core.store.trained_models import TrainedModelKey, training_hash

__all__ = [
    "AddResult",
    "BatchRecord",
    "CacheKey",
    "CachedReply",
    "ClassificationLog",
    "ClassificationRecord",
    "EscalationKey",
    "EscalationRecord",
    "EvaluationRecord",
    "ExampleInput",
    "ExampleRecord",
    "ExperimentRecord",
    "Grade",
    "JobRecord",
    "LabelChangeRecord",
    "LeaseLost",
    "ModelRating",
    "ResultRecord",
    "SetSummary",
    "Store",
    "TrainedModelKey",
    "TrainingData",
    "TuneJob",
    "TunedEncoderInfo",
    "TunedEncoderInput",
    "TurnImageRecord",
    "TurnRecord",
    "current_revision",
    "head_revision",
    "make_engine",
    "text_hash",
    "training_hash",
    "upgrade",
]
