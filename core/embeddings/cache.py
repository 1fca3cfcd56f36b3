"""An embedder wrapper that never embeds the same text twice for the same settings.

Vectors are kept in the database keyed by (embedder, model, task type, dimensions, text hash), so
a restart, another worker or another command reuses them; changing the model or the dimensions
simply misses the cache and embeds again from the stored texts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from core.embeddings.base import Embedder, TaskType
from core.errors import InvalidInput
from core.store import CacheKey, text_hash

log = logging.getLogger(__name__)

# Vectors written to the cache a transaction: few enough commits that SQLite's per-commit cost
# stays small, often enough that the writes overlap the requests still in flight.
WRITE_EVERY = 500


class VectorCache(Protocol):
    """What the cache needs from the store."""

    def get_vectors(self, key: CacheKey, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_vectors(self, key: CacheKey, vectors: Mapping[str, np.ndarray]) -> None: ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """Strip every text and refuse empty ones, naming their position (1-based)."""
    cleaned = [t.strip() if isinstance(t, str) else "" for t in texts]
    empty = [i + 1 for i, t in enumerate(cleaned) if not t]
    if empty:
        where = "the text is" if len(texts) == 1 else f"text {', '.join(map(str, empty[:5]))} is"
        raise InvalidInput(f"{where} empty")
    return cleaned


class CachedEmbedder:
    """Embeds through a `VectorCache`: known texts come from it, new ones are embedded once."""

    def __init__(self, embedder: Embedder, cache: VectorCache) -> None:
        self.embedder = embedder
        self._cache = cache

    @property
    def dimensions(self) -> int:
        return self.embedder.dimensions

    def key(self, task_type: TaskType) -> CacheKey:
        # Models that ignore the task type share one cache entry for every use of a text.
        task = str(task_type) if self.embedder.uses_task_type else ""
        return CacheKey(self.embedder.name, self.embedder.model, task, self.embedder.dimensions)

    def embed(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        """Unit-length vectors for `texts`, in order; raises InvalidInput for an empty text."""
        cleaned = check_texts(texts)
        if not cleaned:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        hashes = [text_hash(t) for t in cleaned]
        # The same text twice in one call is embedded once.
        unique = dict(zip(hashes, cleaned, strict=True))
        key = self.key(task_type)
        found = self._cache.get_vectors(key, list(unique))
        missing = [h for h in unique if h not in found]
        if missing:
            new_texts = [unique[h] for h in missing]
            self._warn_if_truncated(new_texts)
            found.update(self._embed_and_store(key, missing, new_texts, task_type))
        return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)

    def _embed_and_store(
        self, key: CacheKey, hashes: list[str], texts: list[str], task_type: TaskType
    ) -> dict[str, np.ndarray]:
        # Parts are stored as they arrive, a few hundred rows a transaction: the writes overlap the
        # requests still in flight, and a job that fails half-way (a daily quota, say) keeps the
        # vectors it has already paid for, so running it again sends only the rest.
        fresh: dict[str, np.ndarray] = {}
        unsaved: dict[str, np.ndarray] = {}

        def save() -> None:
            self._cache.put_vectors(key, unsaved)
            fresh.update(unsaved)
            unsaved.clear()

        # closing(): a write that fails must also cancel the requests not yet sent.
        with contextlib.closing(self.embedder.embed_parts(texts, task_type=task_type)) as parts:
            while True:
                try:
                    part = next(parts, None)
                except Exception:
                    save()  # what arrived before the failure is paid for: keep it
                    raise
                if part is None:
                    break
                offset, vectors = part
                for h, v in zip(hashes[offset : offset + len(vectors)], vectors, strict=True):
                    unsaved[h] = np.asarray(v, dtype=np.float32)
                if len(unsaved) >= WRITE_EVERY:
                    save()
        save()
        return fresh

    def _warn_if_truncated(self, texts: Sequence[str]) -> None:
        # Truncating (rather than refusing) keeps a long Slack message classifiable; the warning
        # tells the user that only its start counted.
        for i in self.embedder.too_long(texts):
            preview = texts[i][:40].replace("\n", " ")
            log.warning(
                "text %r… is longer than the model reads (%s): only its start was used",
                preview,
                self.embedder.max_input,
            )
