"""Where Gembot keeps its data: label sets and examples, the embedding cache, the classification log.

Callers use `Store` and the plain records below; the ORM models and Alembic plumbing stay inside
this package.
"""

from core.store.db import current_revision, head_revision, make_engine, upgrade
from core.store.records import (
    AddResult,
    CacheKey,
    ClassificationRecord,
    ExampleInput,
    ExampleRecord,
    SetSummary,
    TrainingData,
    text_hash,
)
from core.store.repository import Store

__all__ = [
    "AddResult",
    "CacheKey",
    "ClassificationRecord",
    "ExampleInput",
    "ExampleRecord",
    "SetSummary",
    "Store",
    "TrainingData",
    "current_revision",
    "head_revision",
    "make_engine",
    "text_hash",
    "upgrade",
]
