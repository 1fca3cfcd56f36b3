"""The classification log: what was classified, by whom, and what the answer was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store import validation
from core.store.records import ClassificationRecord, from_row
from core.store.schema import Classification

#: One classification to log: (text, label or None when abstained, confidence, method, scores).
LoggedResult = tuple[str, str | None, float, str, Mapping[str, float]]


def rows(
    *, team_id: str, set_name: str, user_id: str | None, source: str, results: Sequence[LoggedResult]
) -> list[Classification]:
    """Checked, JSON-safe rows for `results`; built before any transaction opens."""
    team = validation.team_id(team_id)
    name = validation.set_name(set_name)
    user = validation.clean_optional(user_id, what="user id", limit=64)
    origin = validation.clean(source, what="source", limit=16)
    return [
        Classification(
            team_id=team,
            set_name=name,
            user_id=user,
            source=origin,
            # Logging must not fail after the answer was given, and PostgreSQL refuses NUL.
            text=text.replace("\x00", "\ufffd"),
            label=None if label is None else validation.label_name(label),
            confidence=float(confidence),
            method=validation.clean(method, what="method", limit=16),
            # float() turns numpy scalars into something JSON can hold.
            scores={str(k): float(v) for k, v in scores.items()},
        )
        for text, label, confidence, method, scores in results
    ]


def record(r: Classification) -> ClassificationRecord:
    return from_row(ClassificationRecord, r, scores=dict(r.scores))


def recent(s: Session, team_id: str, limit: int) -> list[ClassificationRecord]:
    found = s.scalars(
        select(Classification)
        .where(Classification.team_id == team_id.strip())
        .order_by(Classification.created_at.desc(), Classification.id.desc())
        .limit(limit)
    )
    return [record(r) for r in found]


def get(s: Session, team_id: str, classification_id: int) -> ClassificationRecord | None:
    found = s.scalar(
        select(Classification).where(
            Classification.id == classification_id, Classification.team_id == team_id.strip()
        )
    )
    return None if found is None else record(found)
