"""Deterministic stand-ins for embedding models, for tests that are about everything but the model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from core.embeddings.base import Embedder, TaskType


class BagOfWordsEmbedder(Embedder):
    """Hashed bag of words: texts that share words are close. Counts what it is asked to embed."""

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
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "big") % self._dimensions] += 1.0
            out[row, 0] += 0.05  # never a zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)
