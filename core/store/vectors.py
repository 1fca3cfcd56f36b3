"""The embedding cache's queries: vectors stored as float32 bytes under (model, text hash).

Functions here take an open session and run inside the caller's transaction; `Store` owns the
transactions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import upserts
from core.store.records import CacheKey
from core.store.schema import HASH_LENGTH, Embedding

# Hashes per query: far below SQLite's (32,766) and PostgreSQL's (65,535) bound-parameter limits,
# and small enough that one slow query does not hold a transaction for long.
CHUNK = 500

# Little-endian on disk whatever the machine, so a database copied between hosts stays valid.
_DISK_DTYPE = np.dtype("<f4")

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def encode(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=_DISK_DTYPE).tobytes()


def decode(blob: bytes) -> np.ndarray:
    # astype copies, so callers get an ordinary writable array rather than a view of the bytes.
    return np.frombuffer(blob, dtype=_DISK_DTYPE).astype(np.float32)


def _matches(key: CacheKey) -> ColumnElement[bool]:
    return and_(
        Embedding.embedder == key.embedder,
        Embedding.model == key.model,
        Embedding.task_type == key.task_type,
        Embedding.dimensions == key.dimensions,
    )


def get_vectors(session: Session, key: CacheKey, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    wanted = list(dict.fromkeys(hashes))
    found: dict[str, np.ndarray] = {}
    for chunk in chunks(wanted):
        rows = session.execute(
            select(Embedding.text_hash, Embedding.vector).where(_matches(key), Embedding.text_hash.in_(chunk))
        )
        for hash_, blob in rows:
            found[hash_] = decode(blob)
    return found


def put_vectors(session: Session, key: CacheKey, vectors: Mapping[str, np.ndarray]) -> None:
    rows: list[dict[str, Any]] = []
    for hash_, vector in vectors.items():
        if len(hash_) != HASH_LENGTH:
            raise InvalidInput(f"{hash_[:20]!r} is not a text hash: use core.store.text_hash")
        array = np.asarray(vector, dtype=np.float32)
        if array.shape != (key.dimensions,):
            raise InvalidInput(
                f"the vector for {hash_[:12]} has shape {array.shape}, not ({key.dimensions},)"
            )
        rows.append(
            {
                "embedder": key.embedder,
                "model": key.model,
                "task_type": key.task_type,
                "dimensions": key.dimensions,
                "text_hash": hash_,
                "vector": encode(array),
            }
        )
    # Two workers embedding the same new text both try to store it; the second insert must be a
    # no-op rather than an error, and ON CONFLICT DO NOTHING says so without a race window.
    statement = upserts.insert(session, Embedding, needs="the embedding cache needs").on_conflict_do_nothing()
    for chunk in chunks(rows):
        session.execute(statement, list(chunk))
