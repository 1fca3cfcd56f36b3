"""The one interface every embedding model implements."""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence

import numpy as np


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

    def too_long(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts longer than the model reads; those are truncated by the model."""
        return []

    @property
    def max_input(self) -> str:
        """How much text the model reads, in words for people ("256 tokens")."""
        return "unlimited"
