"""The label-set change log: rows written inside the transaction of each change, read newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.records import AddResult, LabelChangeRecord, from_row
from core.store.schema import ACTOR_LENGTH, LabelChange
from core.store.validation import CleanExample

#: Characters of an example's text kept in the log.
PREVIEW = 200


def record(
    s: Session,
    team_id: str,
    set_name: str,
    *,
    actor: str | None,
    action: str,
    count: int,
    label: str | None = None,
    example_id: int | None = None,
    text: str | None = None,
) -> None:
    """Add one change to the log, in the caller's transaction."""
    s.add(
        LabelChange(
            team_id=team_id,
            set_name=set_name,
            actor=_actor(actor),
            action=action,
            label=label,
            example_id=example_id,
            text=_preview(text) if text is not None else None,
            count=count,
        )
    )


def record_added(
    s: Session, team_id: str, set_name: str, rows: list[CleanExample], result: AddResult, *, actor: str | None
) -> None:
    """Log what `labels.add` did: `add` for a single example, `import` (with the count) for several."""
    if not result.added:
        return  # nothing changed
    if len(rows) == 1:
        (row,) = rows
        record(
            s,
            team_id,
            set_name,
            actor=actor,
            action="add",
            count=1,
            label=row.label,
            example_id=result.ids[0],
            text=row.text,
        )
        return
    names = {row.label for row in rows}
    record(
        s,
        team_id,
        set_name,
        actor=actor,
        action="import",
        count=result.added,
        label=names.pop() if len(names) == 1 else None,
    )


def latest(s: Session, team_id: str, *, set_name: str | None, limit: int) -> list[LabelChangeRecord]:
    """The workspace's newest changes (of one set when `set_name` is given), newest first."""
    query = select(LabelChange).where(LabelChange.team_id == team_id.strip())
    if set_name is not None:
        query = query.where(LabelChange.set_name == set_name.strip())
    # By id rather than by time: ids follow commit order closely enough, and never tie.
    rows = s.scalars(query.order_by(LabelChange.id.desc()).limit(limit)).all()
    return [from_row(LabelChangeRecord, row) for row in rows]


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1].rstrip() + "…"


def _actor(actor: str | None) -> str | None:
    cleaned = (actor or "").strip()[:ACTOR_LENGTH]
    return cleaned or None
