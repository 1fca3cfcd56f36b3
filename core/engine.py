"""The engine every surface drives: label sets in the store, embeddings, classification, similarity.

An `Engine` is cheap to share between threads. It keeps trained models in memory keyed by the
label set's version number in the database, so a change made by any process (another worker, the
CLI) is picked up at the next request and nothing is retrained while the set stays the same. A
model is trained by one thread at a time: requests that need it meanwhile wait for that one
rather than each embedding the examples and training again (a burst of requests after a start or
a change would otherwise hold the interpreter for seconds).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.classify import Evaluation, Prediction, TrainedModel, evaluate, train
from core.clustering import Clustering, cluster, project_2d
from core.embeddings.base import Embedder, TaskType
from core.embeddings.cache import CachedEmbedder, check_texts
from core.errors import NotEnoughLabels
from core.settings import Settings
from core.similarity import SimilarPair, cosine_matrix, top_pairs
from core.store import CacheKey, Store

METHODS = ("auto", "centroid", "logreg")


@dataclass(frozen=True)
class Similarity:
    """Pairwise cosine similarities of some texts, and the most similar pairs."""

    texts: list[str]
    matrix: np.ndarray
    pairs: list[SimilarPair]


@dataclass(frozen=True)
class ClusterView:
    """Texts grouped into clusters, with a 2-D projection for plotting."""

    texts: list[str]
    clustering: Clustering
    points: np.ndarray


@dataclass(frozen=True)
class _ModelKey:
    team_id: str
    set_name: str
    version: int
    method: str
    embedding: CacheKey
    temperature: float | None


def _require_two_labels(labels: Sequence[str], set_name: str) -> None:
    # Checked before anything is embedded: no point loading a model for a set that cannot work.
    if len(set(labels)) < 2:
        raise NotEnoughLabels(
            f"label set {set_name!r} needs at least two labels with examples to classify "
            f"(it has {len(set(labels))})"
        )


class Engine:
    """Classification, evaluation, similarity and clustering over a store and an embedder."""

    def __init__(
        self, *, store: Store, embedder: Embedder, settings: Settings, models_kept: int = 32
    ) -> None:
        self.store = store
        self.settings = settings
        self.embeddings = CachedEmbedder(embedder, store)
        self._models: OrderedDict[_ModelKey, TrainedModel] = OrderedDict()
        self._models_kept = models_kept
        self._lock = threading.Lock()
        self._training: dict[_ModelKey, threading.Lock] = {}

    # -- classification -------------------------------------------------------------------

    def model_for(self, team_id: str, set_name: str, *, method: str = "auto") -> TrainedModel:
        """The trained model for a set at its current version, trained only when the set changed."""
        version = self.store.get_set(team_id, set_name).version
        key = self._key(team_id, set_name, version, method)
        cached = self._cached(key)
        if cached is not None:
            return cached
        with self._lock:
            training = self._training.setdefault(key, threading.Lock())
        try:
            with training:
                # Trained by another thread while this one waited?
                cached = self._cached(key)
                return cached if cached is not None else self._train(team_id, set_name, method)
        finally:
            with self._lock:
                self._training.pop(key, None)

    def _cached(self, key: _ModelKey) -> TrainedModel | None:
        with self._lock:
            cached = self._models.get(key)
            if cached is not None:
                self._models.move_to_end(key)
            return cached

    def _train(self, team_id: str, set_name: str, method: str) -> TrainedModel:
        data = self.store.training_data(team_id, set_name)
        _require_two_labels(data.labels, set_name)
        vectors = self.embeddings.embed(data.texts, task_type=TaskType.CLASSIFICATION)
        model = train(
            vectors,
            data.labels,
            method=method,
            temperature=self.settings.temperature,
        )
        # Cache under the version the data was read at: a change in between gets its own entry.
        with self._lock:
            self._models[self._key(team_id, set_name, data.version, method)] = model
            while len(self._models) > self._models_kept:
                self._models.popitem(last=False)
        return model

    def classify(
        self,
        team_id: str,
        set_name: str,
        texts: Sequence[str],
        *,
        method: str = "auto",
        user_id: str | None = None,
        source: str = "cli",
        log: bool = True,
    ) -> list[Prediction]:
        """Classify `texts` against a label set; every result is written to the classification log."""
        cleaned = check_texts(texts)
        model = self.model_for(team_id, set_name, method=method)
        vectors = self.embeddings.embed(cleaned, task_type=TaskType.CLASSIFICATION)
        predictions = model.predict(
            vectors, min_similarity=self.settings.min_similarity, min_margin=self.settings.min_margin
        )
        if log:
            self.store.log_classifications(
                team_id=team_id,
                set_name=set_name,
                user_id=user_id,
                source=source,
                results=[
                    (text, p.label, p.confidence, p.method, p.scores)
                    for text, p in zip(cleaned, predictions, strict=True)
                ],
            )
        return predictions

    def evaluate(self, team_id: str, set_name: str, *, method: str = "auto") -> Evaluation:
        """Cross-validated quality of a label set on its own examples."""
        data = self.store.training_data(team_id, set_name)
        _require_two_labels(data.labels, set_name)
        vectors = self.embeddings.embed(data.texts, task_type=TaskType.CLASSIFICATION)
        return evaluate(
            vectors,
            data.labels,
            method=method,
            temperature=self.settings.temperature,
            min_similarity=self.settings.min_similarity,
            min_margin=self.settings.min_margin,
        )

    def _key(self, team_id: str, set_name: str, version: int, method: str) -> _ModelKey:
        return _ModelKey(
            team_id,
            set_name,
            version,
            method,
            self.embeddings.key(TaskType.CLASSIFICATION),
            self.settings.temperature,
        )

    # -- similarity and clustering ----------------------------------------------------------

    def similarity(self, texts: Sequence[str], *, pairs: int = 10) -> Similarity:
        """Cosine similarity of every pair of texts, with the `pairs` most similar first."""
        cleaned = check_texts(texts)
        vectors = self.embeddings.embed(cleaned, task_type=TaskType.SEMANTIC_SIMILARITY)
        matrix = cosine_matrix(vectors)
        return Similarity(cleaned, matrix, top_pairs(matrix, k=pairs))

    def cluster(self, texts: Sequence[str], *, k: int | None = None) -> ClusterView:
        """Group texts by meaning: k-means with `k`, or k chosen by silhouette score."""
        cleaned = check_texts(texts)
        vectors = self.embeddings.embed(cleaned, task_type=TaskType.CLUSTERING)
        return ClusterView(cleaned, cluster(vectors, k=k), project_2d(vectors))
