"""The evaluation history: each `/label eval` (or `gembot labels eval`) leaves its headline figures."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store.records import EvaluationRecord, from_row
from core.store.schema import EvaluationRun


def record(r: EvaluationRun) -> EvaluationRecord:
    return from_row(EvaluationRecord, r)


def latest(s: Session, team_id: str) -> dict[str, EvaluationRecord]:
    # The newest row per set: the highest id, which is also the latest insert.
    newest = (
        select(func.max(EvaluationRun.id))
        .where(EvaluationRun.team_id == team_id.strip())
        .group_by(EvaluationRun.set_name)
        .scalar_subquery()
    )
    rows = s.scalars(select(EvaluationRun).where(EvaluationRun.id.in_(newest)))
    return {r.set_name: record(r) for r in sorted(rows, key=lambda r: r.set_name)}
