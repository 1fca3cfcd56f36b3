"""Fitted classifiers kept in the database, by (team, set, set version, fit), as opaque bytes.

Functions here take an open session and run inside the caller's transaction; `Store` owns the
transactions. The bytes are whatever `core.classify.TrainedModel.to_bytes` wrote; the store
knows only their format number, and hands back nothing in another format. A model is kept only
for its set's current version: a save forgets the set's models of every other version, and those
of the workspace's sets that no longer exist, so the table stays bounded by the live sets times
the few ways each is fitted. Two processes saving the same model at once is fine: the last write
wins, and both wrote the same fit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.store import upserts
from core.store.records import CacheKey, TrainingData
from core.store.schema import LabelSet, TrainedModelRow, utcnow
from core.store.validation import clean, set_name, team_id


@dataclass(frozen=True)
class TrainedModelKey:
    """Which fit a kept model is: a set at one version, fitted on examples whose `training_hash`
    is `data_hash`, by `method` on vectors of `embedding`, with the softmax `temperature` (None:
    calibrated) and `target_coverage` it was asked for."""

    team_id: str
    set_name: str
    set_version: int
    data_hash: str
    method: str
    embedding: CacheKey
    temperature: float | None
    target_coverage: float


def training_hash(data: TrainingData) -> str:
    """sha256 of a set's examples and their labels, in the order a model is fitted on them."""
    digest = hashlib.sha256()
    for label, text in zip(data.labels, data.texts, strict=True):
        digest.update(json.dumps([label, text]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _fit_key(key: TrainedModelKey) -> str:
    parts = {
        "method": clean(key.method, what="method", limit=32),
        "embedder": key.embedding.embedder,
        "model": key.embedding.model,
        "task_type": key.embedding.task_type,
        "dimensions": int(key.embedding.dimensions),
        # repr keeps every float exactly; None stays distinct from any number.
        "temperature": None if key.temperature is None else repr(float(key.temperature)),
        "target_coverage": repr(float(key.target_coverage)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _row_key(key: TrainedModelKey) -> dict[str, Any]:
    return {
        "team_id": team_id(key.team_id),
        "set_name": set_name(key.set_name),
        "set_version": int(key.set_version),
        "fit_key": _fit_key(key),
    }


def get(session: Session, key: TrainedModelKey, *, format: int) -> bytes | None:
    values = _row_key(key)
    row = session.get(TrainedModelRow, values)
    if row is None or row.format != format or row.data_hash != key.data_hash:
        return None
    return row.model


def put(session: Session, key: TrainedModelKey, blob: bytes, *, format: int) -> bool:
    values = _row_key(key)
    team, name = values["team_id"], values["set_name"]
    current = session.scalar(select(LabelSet.version).where(LabelSet.team_id == team, LabelSet.name == name))
    # Only the version that classifications ask for is worth keeping: a fit of a version the set
    # has since left (or of a set since removed) is dropped, as are the set's other versions.
    session.execute(
        delete(TrainedModelRow).where(
            TrainedModelRow.team_id == team,
            TrainedModelRow.set_name == name,
            TrainedModelRow.set_version != (current if current is not None else -1),
        )
    )
    session.execute(
        delete(TrainedModelRow).where(
            TrainedModelRow.team_id == team,
            TrainedModelRow.set_name.not_in(select(LabelSet.name).where(LabelSet.team_id == team)),
        )
    )
    if current != values["set_version"]:
        return False
    stored = {"data_hash": key.data_hash, "format": int(format), "model": blob, "created_at": utcnow()}
    insert = upserts.insert(session, TrainedModelRow, needs="kept models need")
    session.execute(
        insert.values(**values, **stored).on_conflict_do_update(index_elements=list(values), set_=stored)
    )
    return True


def forget(session: Session, team: str, name: str) -> None:
    """Delete every kept model of a set (it is being removed)."""
    session.execute(
        delete(TrainedModelRow).where(
            TrainedModelRow.team_id == team_id(team), TrainedModelRow.set_name == set_name(name)
        )
    )
