"""Gemini's cached answers for unsure classifications, by (team, set, set version, model, text hash).

Functions here take an open session and run inside the caller's transaction; `Store` owns the
transactions. A save replaces the row under the same key (a second worker that asked the same
question meanwhile, or a question asked anew because its fingerprint changed) and forgets the
set's answers for older versions, which no classification can use again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import upserts
from core.store.schema import HASH_LENGTH, MODEL_NAME_LENGTH, Escalation, utcnow
from core.store.validation import clean, label_name, set_name, team_id

_KEY = ("team_id", "set_name", "set_version", "model", "text_hash")


@dataclass(frozen=True)
class EscalationKey:
    """Which question an answer belongs to: a text (by `core.store.text_hash`) asked of `model`
    about a set at one version."""

    team_id: str
    set_name: str
    set_version: int
    model: str
    text_hash: str


@dataclass(frozen=True)
class EscalationRecord:
    """A cached answer: `label` None when Gemini found none fits; `prompt_hash` the question's
    fingerprint, to be compared with the one about to be asked."""

    label: str | None
    prompt_hash: str
    created_at: datetime


def _hash(value: str, what: str) -> str:
    if len(value) != HASH_LENGTH:
        raise InvalidInput(f"{value[:20]!r} is not a {what}: expected {HASH_LENGTH} hex digits")
    return value


def _clean_key(key: EscalationKey) -> dict[str, Any]:
    return {
        "team_id": team_id(key.team_id),
        "set_name": set_name(key.set_name),
        "set_version": int(key.set_version),
        "model": clean(key.model, what="model name", limit=MODEL_NAME_LENGTH),
        "text_hash": _hash(key.text_hash, "text hash"),
    }


def get(session: Session, key: EscalationKey) -> EscalationRecord | None:
    values = _clean_key(key)
    row = session.scalars(
        select(Escalation).where(*(getattr(Escalation, name) == values[name] for name in _KEY))
    ).one_or_none()
    if row is None:
        return None
    return EscalationRecord(label=row.label, prompt_hash=row.prompt_hash, created_at=row.created_at)


def put(session: Session, key: EscalationKey, *, prompt_hash: str, label: str | None) -> None:
    values = _clean_key(key)
    answer = {
        "prompt_hash": _hash(prompt_hash, "prompt hash"),
        "label": None if label is None else label_name(label),
        "created_at": utcnow(),
    }
    insert = upserts.insert(session, Escalation, needs="the escalation cache needs")
    session.execute(
        insert.values(**values, **answer).on_conflict_do_update(index_elements=list(_KEY), set_=answer)
    )
    session.execute(
        delete(Escalation).where(
            Escalation.team_id == values["team_id"],
            Escalation.set_name == values["set_name"],
            Escalation.set_version < values["set_version"],
        )
    )


def forget(session: Session, team: str, name: str) -> None:
    """Delete every cached answer about a set (it is being removed: no version of it is asked again)."""
    session.execute(
        delete(Escalation).where(Escalation.team_id == team_id(team), Escalation.set_name == set_name(name))
    )
