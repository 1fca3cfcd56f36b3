"""Gemini embeddings (`gemini-embedding-001`): batches of 100, several in flight, paced under quota.

`batchEmbedContents` takes at most 100 texts, and the SDK sends whatever it is given as one
request, so the texts are split here. Requests run on a small thread pool shared by every call,
which bounds what is in flight across the whole process; a `RateLimiter` keeps a long job under
the project's requests-per-minute quota rather than bouncing off 429s. Only the full 3072-wide
vector comes normalised, so shorter ones are re-normalised here.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
from google.genai import types

from core.embeddings.base import Embedder, Parts, TaskType
from core.gemini.client import GeminiClient
from core.gemini.failures import BadResponse
from core.gemini.ratelimit import RateLimiter
from core.settings import Settings

DEFAULT_MODEL = "gemini-embedding-001"
MAX_BATCH = 100
FULL_SIZE = 3072
MAX_TOKENS = 2048


class EmbeddingStopped(Exception):
    """A batch not sent because an earlier one of the same call failed; never leaves this module."""


class GeminiEmbedder(Embedder):
    """Embeddings from the Gemini API, tuned to the task type, `dimensions` wide, unit length."""

    name = "gemini"
    uses_task_type = True

    def __init__(
        self,
        client: GeminiClient,
        *,
        model: str = DEFAULT_MODEL,
        dimensions: int = 768,
        concurrency: int = 4,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not 1 <= dimensions <= FULL_SIZE:
            raise ValueError(f"dimensions must be between 1 and {FULL_SIZE}")
        self._client = client
        self._model = model.removeprefix("models/")
        self._dimensions = dimensions
        self._concurrency = max(1, concurrency)
        self._limiter = limiter
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client: GeminiClient | None = None) -> GeminiEmbedder:
        """The embedder GEMBOT_EMBEDDING_MODEL / _DIM / GEMBOT_EMBED_CONCURRENCY / _RPM describe."""
        return cls(
            client or GeminiClient.from_settings(settings),
            model=settings.embedding_model or DEFAULT_MODEL,
            dimensions=settings.embedding_dim,
            concurrency=settings.embed_concurrency,
            limiter=RateLimiter(settings.embed_rpm, per=60.0) if settings.embed_rpm else None,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def max_input(self) -> str:
        return f"{MAX_TOKENS:,} tokens"

    def too_long(self, texts: Sequence[str]) -> list[int]:
        # No tokenizer here: about 4 characters a token in English, so this flags the clear cases
        # (Gemini cuts the rest off silently).
        return [i for i, t in enumerate(texts) if len(t) > 4 * MAX_TOKENS]

    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        vectors = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for offset, part in self.embed_parts(texts, task_type=task_type):
            vectors[offset : offset + len(part)] = part
        return vectors

    def embed_parts(self, texts: Sequence[str], *, task_type: TaskType) -> Parts:
        """One part for each request of up to 100 texts, yielded in the order the answers arrive."""
        offsets = range(0, len(texts), MAX_BATCH)
        if len(offsets) == 1:
            yield 0, self._embed_one(list(texts), task_type)
            return
        # Each batch runs in a copy of the caller's context, so that it is charged to the same
        # user (`core.daily_limits`); a Context cannot be entered by two threads, hence one copy each.
        pool = self._executor()
        # Set by the first batch that fails, in its own thread, so that no batch the pool starts
        # after it sends a request: cancelling from here would come only once this generator's
        # thread is scheduled again, and under load the pool would send several more meanwhile.
        failed = threading.Event()

        def one(batch: list[str]) -> np.ndarray:
            if failed.is_set():
                raise EmbeddingStopped("an earlier request of this job failed")
            try:
                return self._embed_one(batch, task_type)
            except BaseException:
                failed.set()
                raise

        futures = {
            pool.submit(contextvars.copy_context().run, one, list(texts[i : i + MAX_BATCH])): i
            for i in offsets
        }
        try:
            for future in as_completed(futures):
                try:
                    vectors = future.result()
                except EmbeddingStopped:
                    continue  # the batch that failed raises its own error when its turn comes
                yield futures[future], vectors
        finally:
            # On a failed request, or a caller that stopped reading: stop what has not started;
            # what is in flight finishes and is thrown away.
            for future in futures:
                future.cancel()

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="gemini-embed")
            return self._pool

    def _embed_one(self, texts: list[str], task_type: TaskType) -> np.ndarray:
        sdk = self._client.sdk
        contents: list[types.PartUnion] = list(texts)
        config = types.EmbedContentConfig(task_type=str(task_type), output_dimensionality=self._dimensions)
        response = self._client.call(
            lambda: sdk.models.embed_content(model=self._model, contents=contents, config=config),
            model=self._model,
            limiter=self._limiter,
        )
        rows = [e.values or [] for e in response.embeddings or []]
        if len(rows) != len(texts) or any(len(row) != self._dimensions for row in rows):
            raise BadResponse(
                f"Gemini returned {len(rows)} embeddings for {len(texts)} texts or the wrong size; try again"
            )
        vectors = np.asarray(rows, dtype=np.float32)
        if self._dimensions < FULL_SIZE:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.where(norms > 0, norms, np.float32(1.0))
        return vectors
