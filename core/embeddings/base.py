"""The one interface every embedding model implements."""

from __future__ import annotations

import abc
import enum
from collections.abc import Generator, Sequence
from typing import TypeAlias

import numpy as np

#: (offset of a part in the texts, its vectors), as `Embedder.embed_parts` yields them.
Parts: TypeAlias = Generator[tuple[int, np.ndarray], None, None]


class TaskType(enum.StrEnum):
    """What the vectors are for; Gemini tunes its embeddings to it, MiniLM ignores it."""

    CLASSIFICATION = "CLASSIFICATION"
    CLUSTERING = "CLUSTERING"
    SEMANTIC_SIMILARITY = "SEMANTIC_SIMILARITY"
    RETRIEVAL_QUERY = "RETRIEVAL_QUERY"
    RETRIEVAL_DOCUMENT = "RETRIEVAL_DOCUMENT"


class Embedder(abc.ABC):
    """Turns texts into unit-length float32 vectors.

    Subclasses implement `embed_batch`; callers normally go through `embed`, which checks the
    input, and through `core.embeddings.cache.CachedEmbedder`, which never embeds a text twice.
    """

    #: Short name of the implementation, part of the cache key ("local", "gemini").
    name: str = "base"
    #: Whether `task_type` changes the vectors; when it does not, the cache shares vectors
    #: across task types.
    uses_task_type: bool = False

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The model's name, part of the cache key."""

    @property
    @abc.abstractmethod
    def dimensions(self) -> int:
        """Length of every vector this embedder returns."""

    @abc.abstractmethod
    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        """Embed `texts` (already checked) into an array of shape (len(texts), dimensions)."""

    def embed_parts(self, texts: Sequence[str], *, task_type: TaskType) -> Parts:
        """Embed `texts` in parts, yielding (offset of the part in `texts`, its vectors) as each is ready.

        Parts may come in any order. An embedder that sends requests overrides this so that a
        caller can store each part while the rest are still in flight, and keeps what it paid for
        when a later part fails; this default embeds everything as one part.
        """
        yield 0, self.embed_batch(texts, task_type=task_type)

    def too_long(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts longer than the model reads; those are truncated by the model."""
        return []

    @property
    def max_input(self) -> str:
        """How much text the model reads, in words for people ("256 tokens")."""
        return "unlimited"
