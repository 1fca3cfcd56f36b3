"""Gemini's answers shown in Slack, and each person's verdict on them (good or not).

Functions here take an open session and run inside the caller's transaction; `Store` owns the
transactions. An answer is a row of its own (workspace, channel, message, model) so that its
feedback buttons carry only its id; a verdict is keyed by (answer, person), so a person who
presses again changes their verdict rather than adding one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.store import upserts, validation
from core.store.schema import (
    CHANNEL_ID_LENGTH,
    MODEL_NAME_LENGTH,
    TS_LENGTH,
    USER_ID_LENGTH,
    AnswerFeedbackRow,
    AnswerRow,
    utcnow,
)


@dataclass(frozen=True)
class ModelRating:
    """How one model's answers were judged: of the `rated` answers someone gave feedback on,
    `good` were judged good (more of the people who rated the answer said good than not)."""

    model: str
    rated: int
    good: int

    @property
    def share(self) -> float:
        """`good` / `rated` (0 when nothing was rated)."""
        return self.good / self.rated if self.rated else 0.0


def new_answer(team: str, channel: str, *, message_ts: str | None, model: str) -> AnswerRow:
    """A checked answer row, built before any transaction opens."""
    return AnswerRow(
        team_id=validation.team_id(team),
        channel_id=validation.clean(channel, what="channel id", limit=CHANNEL_ID_LENGTH),
        message_ts=validation.clean_optional(message_ts, what="message timestamp", limit=TS_LENGTH),
        model=validation.clean(model, what="model name", limit=MODEL_NAME_LENGTH),
    )


def add(s: Session, row: AnswerRow) -> int:
    s.add(row)
    s.flush()
    return row.id


def rate(s: Session, team: str, answer_id: int, user: str, *, good: bool) -> str:
    """Keep `user`'s verdict on the workspace's answer `answer_id`, replacing theirs if any; the
    answer's model. NotFound when the workspace has no such answer (pruned, or another
    workspace's: the id came in a payload and is not trusted)."""
    team = validation.team_id(team)
    user = validation.clean(user, what="user id", limit=USER_ID_LENGTH)
    model = s.scalars(
        select(AnswerRow.model).where(AnswerRow.id == int(answer_id), AnswerRow.team_id == team)
    ).one_or_none()
    if model is None:
        raise NotFound(f"no answer {answer_id} in this workspace")
    verdict = {"good": bool(good), "updated_at": utcnow()}
    insert = upserts.insert(s, AnswerFeedbackRow, needs="answer feedback needs")
    s.execute(
        insert.values(answer_id=int(answer_id), user_id=user, **verdict).on_conflict_do_update(
            index_elements=["answer_id", "user_id"], set_=verdict
        )
    )
    return model


def ratings(s: Session, team: str, *, since: datetime) -> list[ModelRating]:
    """Per model, the workspace's answers since `since` that got feedback, and how many of them
    were judged good (more good verdicts than bad), by model name. One grouped query: the
    verdicts are first summed per answer, then the answers counted per model."""
    per_answer = (
        select(
            AnswerRow.model.label("model"),
            func.sum(case((AnswerFeedbackRow.good, 1), else_=0)).label("goods"),
            func.count().label("verdicts"),
        )
        .join(AnswerFeedbackRow, AnswerFeedbackRow.answer_id == AnswerRow.id)
        .where(AnswerRow.team_id == validation.team_id(team), AnswerRow.created_at >= since)
        .group_by(AnswerRow.id, AnswerRow.model)
        .subquery()
    )
    rows = s.execute(
        select(
            per_answer.c.model,
            func.count(),
            func.sum(case((per_answer.c.goods * 2 > per_answer.c.verdicts, 1), else_=0)),
        )
        .group_by(per_answer.c.model)
        .order_by(per_answer.c.model)
    ).all()
    return [ModelRating(model=model, rated=int(rated), good=int(good or 0)) for model, rated, good in rows]


def prune(s: Session, older_than: datetime) -> int:
    """Delete the answers created before `older_than` and the feedback on them; returns how many
    answers went. The feedback goes first and explicitly: SQLite honours the cascade only on
    connections with `PRAGMA foreign_keys=ON`."""
    old = select(AnswerRow.id).where(AnswerRow.created_at < older_than)
    s.execute(
        delete(AnswerFeedbackRow)
        .where(AnswerFeedbackRow.answer_id.in_(old))
        .execution_options(synchronize_session=False)
    )
    result = s.execute(
        delete(AnswerRow)
        .where(AnswerRow.created_at < older_than)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
