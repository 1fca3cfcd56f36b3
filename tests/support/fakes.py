"""Deterministic stand-ins for embedding models, for tests that are about everything but the model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.embeddings.base import Embedder, TaskType
from tests.support.gemini import bag_of_words_vector


class BagOfWordsEmbedder(Embedder):
    """The Gemini stand-in's hashed bag of words, in process: texts that share words are close.

    Counts what it is asked to embed. Its vectors do not depend on the task type even when
    `uses_task_type` says they may (that flag only changes how the cache keys them).
    """

    name = "fake"

    def __init__(
        self, *, dimensions: int = 64, uses_task_type: bool = False, model: str = "bag-of-words"
    ) -> None:
        self._dimensions = dimensions
        self._model = model
        self.uses_task_type = uses_task_type
        self.calls: list[tuple[list[str], TaskType]] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def embedded(self) -> list[str]:
        return [t for texts, _ in self.calls for t in texts]

    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        self.calls.append((list(texts), task_type))
        width = self._dimensions
        vectors = [bag_of_words_vector(text, size=width, full=width) for text in texts]
        return np.array(vectors, dtype=np.float32).reshape(len(texts), width)
