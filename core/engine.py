"""The engine every surface drives: label sets in the store, embeddings, classification, similarity.

An `Engine` is cheap to share between threads. It keeps trained models in memory keyed by the
label set's version number in the database, so a change made by any process (another worker, the
CLI) is picked up at the next request and nothing is retrained while the set stays the same. A
model it fits is also kept in the database (`Store.save_trained_model`), so another worker or the
next CLI call reads it back instead of fitting it again. A model is trained by one thread at a
time: requests that need it meanwhile wait for that one rather than each embedding the examples
and training again (a burst of requests after a start or a change would otherwise hold the
interpreter for seconds).

A set that was tuned (`tune`, `gembot tune`) is classified through its own embedder: the local
model fine-tuned on it, or an adapter over the frozen vectors (`core.embeddings.tuned`). Its
weights are kept in the database, loaded once per process, and used for as long as they were
tuned from the embedder configured now; the head is fitted on the tuned vectors and kept by set
version like any other. After an edit the last tuned weights keep serving, with a head refitted
on the edited examples, until the re-tune lands.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from core.classify import Evaluation, Prediction, TrainedModel, evaluate, train
from core.classify.model import MODEL_FORMAT, UnknownModelFormat
from core.clustering import Clustering, cluster, project_2d
from core.embeddings.base import Embedder, TaskType
from core.embeddings.cache import CachedEmbedder, check_texts
from core.embeddings.tuned import (
    KIND_ENCODER,
    TUNED_FORMAT,
    AdaptedEmbeddings,
    TunedLocalEmbedder,
    TunedWeights,
    UnknownTunedFormat,
    base_id,
    digest,
    seen_mask,
)
from core.errors import GembotError, InvalidInput, NotEnoughLabels
from core.settings import Settings
from core.similarity import SimilarPair, cosine_matrix, top_pairs
from core.store import (
    CacheKey,
    EscalationKey,
    Store,
    TrainedModelKey,
    TunedEncoderInfo,
    TunedEncoderInput,
    text_hash,
    training_hash,
)
from core.tuning import KINDS, default_kind
from core.tuning.holdout import Verdict, compare, split

if TYPE_CHECKING:
    from core.gemini.client import GeminiClient

log = logging.getLogger(__name__)


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
class TuneOutcome:
    """What `Engine.tune` did: the set's version it tuned, the kind of tuning, on how many
    examples (those not held out), in how many seconds (`details`: the method's own figures), how
    tuned and plain compared on the held-out examples (`verdict`), and whether the tuned weights
    are kept and used: False when the plain model did as well, or when the set changed or went
    away meanwhile (a newer tune will come)."""

    set_name: str
    set_version: int
    kind: str
    examples: int
    seconds: float
    details: dict[str, object]
    kept: bool
    verdict: Verdict


#: Whatever embeds a set's texts: the cached base embedder, a tuned one, or an adapter over it.
SetEmbeddings = CachedEmbedder | AdaptedEmbeddings


@dataclass(frozen=True)
class _ModelKey:
    team_id: str
    set_name: str
    # A set removed and made again counts its versions from the start: its creation tells them apart.
    set_created: datetime | None
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


def _seen(embeddings: SetEmbeddings, texts: Sequence[str]) -> np.ndarray | None:
    """Which texts a tuned embedder trained on (None for the plain one): see `train(seen=)`."""
    tuned = embeddings if isinstance(embeddings, AdaptedEmbeddings) else embeddings.embedder
    weights = getattr(tuned, "weights", None)
    return None if weights is None else seen_mask(weights, texts)


class Engine:
    """Classification, evaluation, similarity and clustering over a store and an embedder."""

    def __init__(
        self,
        *,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        models_kept: int = 32,
        gemini: GeminiClient | None = None,
        trainer: Callable[..., TrainedModel] = train,
        tuned_kept: int = 4,
    ) -> None:
        self.store = store
        self.settings = settings
        # Asked about the texts the embeddings are not sure of (`_escalate`); None: never.
        self.gemini = gemini
        self.embeddings = CachedEmbedder(embedder, store)
        self._models: OrderedDict[_ModelKey, TrainedModel] = OrderedDict()
        self._models_kept = models_kept
        self._lock = threading.Lock()
        self._training: dict[_ModelKey, threading.Lock] = {}
        # `core.classify.train` unless a test counts the fits.
        self._trainer = trainer
        # Tuned embedders by the sha256 of their weights: a tuned MiniLM is a 90 MB copy.
        self._tuned: OrderedDict[str, SetEmbeddings] = OrderedDict()
        self._tuned_kept = tuned_kept
        self._tuned_lock = threading.Lock()

    # -- classification -------------------------------------------------------------------

    def model_for(self, team_id: str, set_name: str, *, method: str = "auto") -> TrainedModel:
        """The trained model for a set at its current version, trained only when the set changed.

        Looked for in memory, then in the database, and fitted (and kept in both) only when
        neither has it.
        """
        return self._model_and_embeddings(team_id, set_name, method)[0]

    def _model_and_embeddings(
        self, team_id: str, set_name: str, method: str
    ) -> tuple[TrainedModel, SetEmbeddings]:
        """`model_for`, with the embeddings it was fitted through: a classification needs both,
        and looking the set's tuned weights up once is enough."""
        found = self.store.get_set(team_id, set_name)
        embeddings = self.embeddings_for(team_id, set_name)
        key = self._key(team_id, set_name, found.created_at, found.version, method, embeddings)
        cached = self._cached(key)
        if cached is not None:
            return cached, embeddings
        with self._lock:
            training = self._training.setdefault(key, threading.Lock())
        try:
            with training:
                # Trained by another thread while this one waited?
                cached = self._cached(key)
                model = cached if cached is not None else self._train(team_id, set_name, method, embeddings)
                return model, embeddings
        finally:
            with self._lock:
                self._training.pop(key, None)

    def _cached(self, key: _ModelKey) -> TrainedModel | None:
        with self._lock:
            cached = self._models.get(key)
            if cached is not None:
                self._models.move_to_end(key)
            return cached

    def _train(self, team_id: str, set_name: str, method: str, embeddings: SetEmbeddings) -> TrainedModel:
        data = self.store.training_data(team_id, set_name)
        _require_two_labels(data.labels, set_name)
        kept = TrainedModelKey(
            team_id=team_id,
            set_name=set_name,
            set_version=data.version,
            data_hash=training_hash(data),
            method=method,
            embedding=embeddings.key(TaskType.CLASSIFICATION),
            temperature=self.settings.temperature,
            target_coverage=self.settings.target_coverage,
        )
        model = self._kept(kept)
        if model is None:
            vectors = embeddings.embed(data.texts, task_type=TaskType.CLASSIFICATION)
            model = self._trainer(
                vectors,
                data.labels,
                method=method,
                temperature=self.settings.temperature,
                target_coverage=self.settings.target_coverage,
                seen=_seen(embeddings, data.texts),
            )
            self._keep(kept, model)
        # Cache under the version the data was read at: a change in between gets its own entry.
        with self._lock:
            self._models[self._key(team_id, set_name, data.created_at, data.version, method, embeddings)] = (
                model
            )
            while len(self._models) > self._models_kept:
                self._models.popitem(last=False)
        return model

    def _kept(self, key: TrainedModelKey) -> TrainedModel | None:
        """The model the database keeps for `key`; None when it has none this code can read."""
        blob = self.store.trained_model(key, format=MODEL_FORMAT)
        if blob is None:
            return None
        try:
            return TrainedModel.from_bytes(blob)
        except UnknownModelFormat as exc:
            log.warning("the kept model of set %r cannot be read; fitting it again: %s", key.set_name, exc)
            return None

    def _keep(self, key: TrainedModelKey, model: TrainedModel) -> None:
        # The classification has its model either way; only the next process pays for a failed save.
        try:
            self.store.save_trained_model(key, model.to_bytes(), format=MODEL_FORMAT)
        except Exception as exc:  # whatever the save raised, the answer stands
            log.warning("could not keep the fitted model of set %r: %s", key.set_name, exc)

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
        escalate: bool = True,
    ) -> list[Prediction]:
        """Classify `texts` against a label set; every result is written to the classification log.

        With `escalate` (and a Gemini client, and GEMBOT_ESCALATE on), the texts the embeddings are
        not sure of go to Gemini (`_escalate`).
        """
        cleaned = check_texts(texts)
        model, embeddings = self._model_and_embeddings(team_id, set_name, method)
        vectors = embeddings.embed(cleaned, task_type=TaskType.CLASSIFICATION)
        predictions = model.predict(
            vectors, min_similarity=self.settings.min_similarity, min_margin=self.settings.min_margin
        )
        if escalate:
            predictions = self._escalate(team_id, set_name, cleaned, predictions)
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

    def _escalate(
        self, team_id: str, set_name: str, texts: Sequence[str], predictions: list[Prediction]
    ) -> list[Prediction]:
        """Ask Gemini about the texts the embeddings were not sure of: the tutorial's hybrid approach.

        Only with a Gemini client and GEMBOT_ESCALATE on. A label Gemini chose comes back as a
        prediction with method "gemini", no longer abstained; its `confidence` is the embedding
        classifier's own probability for that label (Gemini states none) and `reason` says why
        Gemini was asked. When Gemini finds that no label fits, the prediction stays abstained and
        its reason says so. Answers are cached by set version, model and text, so asking again costs
        no call and no daily limit. A failed call or a reached limit leaves the prediction as it was
        (one line in the log): the person still gets an answer, "not sure".
        """
        if self.gemini is None or not self.settings.escalate or not any(p.abstained for p in predictions):
            return predictions
        from core.gemini import escalation  # google-genai loads only for the commands that need it

        # Only what a prompt shows of each label, not the whole set: this runs on every unsure text.
        data = self.store.first_examples(team_id, set_name, per_label=escalation.EXAMPLES_PER_LABEL)
        examples: dict[str, list[str]] = {}
        for label, example in zip(data.labels, data.texts, strict=True):
            examples.setdefault(label, []).append(example)
        model = self.settings.generation_model.removeprefix("models/")
        answered: list[Prediction] = []
        for text, p in zip(texts, predictions, strict=True):
            if not p.abstained:
                answered.append(p)
                continue
            request = escalation.build_request(text, scores=p.scores, examples=examples)
            key = EscalationKey(team_id, set_name, data.version, model, text_hash(text))
            fingerprint = request.fingerprint(model)
            try:
                cached = self.store.escalation(key)
                fresh = cached is None or cached.prompt_hash != fingerprint
                if cached is not None and not fresh:
                    chosen = cached.label
                else:
                    chosen = escalation.ask(self.gemini, request, model=model)
            except GembotError as exc:
                log.warning("no answer from Gemini for an unsure classification; it stays unsure: %s", exc)
                answered.append(p)
                continue
            if fresh:
                try:
                    self.store.save_escalation(key, prompt_hash=fingerprint, label=chosen)
                except GembotError as exc:
                    log.warning("could not cache Gemini's answer for an unsure classification: %s", exc)
            if chosen is None:
                why = f"{p.reason}; " if p.reason else ""
                answered.append(replace(p, reason=f"{why}Gemini found no label that fits"))
            else:
                answered.append(
                    replace(
                        p,
                        label=chosen,
                        best_label=chosen,
                        confidence=p.probabilities.get(chosen, 0.0),
                        method="gemini",
                        abstained=False,
                        reason=f"the examples alone left Gembot unsure ({p.reason})",
                    )
                )
        return answered

    def evaluate(self, team_id: str, set_name: str, *, method: str = "auto") -> Evaluation:
        """Cross-validated quality of a label set on its own examples."""
        data = self.store.training_data(team_id, set_name)
        _require_two_labels(data.labels, set_name)
        # The set's own embedder, tuned or not: what its classifications use. (A tuned encoder has
        # seen these examples, so its figures lean optimistic; `gembot eval` says so.)
        vectors = self.embeddings_for(team_id, set_name).embed(data.texts, task_type=TaskType.CLASSIFICATION)
        return evaluate(
            vectors,
            data.labels,
            method=method,
            temperature=self.settings.temperature,
            target_coverage=self.settings.target_coverage,
            min_similarity=self.settings.min_similarity,
            min_margin=self.settings.min_margin,
        )

    def _key(
        self,
        team_id: str,
        set_name: str,
        set_created: datetime | None,
        version: int,
        method: str,
        embeddings: SetEmbeddings,
    ) -> _ModelKey:
        return _ModelKey(
            team_id,
            set_name,
            set_created,
            version,
            method,
            embeddings.key(TaskType.CLASSIFICATION),
            self.settings.temperature,
        )

    # -- tuning -------------------------------------------------------------------------------

    def serves(self, info: TunedEncoderInfo) -> bool:
        """Whether kept tuned weights are what this engine classifies with: tuned from the
        configured embedder, in a format this code reads."""
        return info.format == TUNED_FORMAT and info.base == base_id(self.embeddings.embedder)

    def embeddings_for(self, team_id: str, set_name: str) -> SetEmbeddings:
        """What embeds a set's texts: its tuned embedder when it has one that fits the configured
        embedder, the plain (cached) one otherwise. Weights that cannot be read are skipped, with
        a line in the log: the set is classified as if untuned until it is tuned again."""
        info = self.store.tuned_encoder(team_id, set_name)
        if info is None or not self.serves(info):
            return self.embeddings
        with self._tuned_lock:
            loaded = self._tuned.get(info.digest)
            if loaded is not None:
                self._tuned.move_to_end(info.digest)
                return loaded
            # Under the lock: two requests must not each build a 90 MB copy of the model.
            blob = self.store.tuned_encoder_blob(team_id, set_name, info.digest)
            if blob is None:
                return self.embeddings
            try:
                weights = TunedWeights.from_bytes(blob)
                if weights.base != info.base:
                    raise UnknownTunedFormat("tuned for another embedder than its row says")
                loaded = self._load_tuned(weights, info.digest)
            except UnknownTunedFormat as exc:
                log.warning(
                    "the tuned weights of set %r cannot be used; classifying untuned: %s", set_name, exc
                )
                return self.embeddings
            self._remember_tuned(info.digest, loaded)
            return loaded

    def _remember_tuned(self, weights_digest: str, loaded: SetEmbeddings) -> None:
        # Callers hold `_tuned_lock`.
        self._tuned[weights_digest] = loaded
        self._tuned.move_to_end(weights_digest)
        while len(self._tuned) > self._tuned_kept:
            self._tuned.popitem(last=False)

    def _load_tuned(self, weights: TunedWeights, digest: str) -> SetEmbeddings:
        if weights.kind == KIND_ENCODER:
            return CachedEmbedder(TunedLocalEmbedder(self.embeddings.embedder, weights, digest), self.store)
        return AdaptedEmbeddings(self.embeddings, weights, digest)

    def tune(
        self,
        team_id: str,
        set_name: str,
        *,
        kind: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        seed: int = 0,
    ) -> TuneOutcome:
        """Learn the set's own embedder from its examples; keep it only if it beats the plain one.

        `kind` is "encoder" (fine-tune the local model; the default with it) or "adapter" (over
        frozen vectors; the default with any other embedder). The tune trains on a share of each
        label's examples and is judged, against the plain embedder, on the rest (`core.tuning.
        holdout`). If it did strictly better its weights are kept for the version the examples were
        read at and classifications use them from then on (`embeddings_for`); if not, the set is
        classified plainly, and weights an older tune left are dropped. Either way the head is
        fitted (and kept) before this returns. `progress(step, steps)` follows the training.
        """
        embedder = self.embeddings.embedder
        kind = kind or default_kind(embedder.name)
        if kind not in KINDS:
            raise InvalidInput(f"the kind of tuning must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == KIND_ENCODER and embedder.name != "local":
            raise InvalidInput(
                f"only the local model can be fine-tuned, not {embedder.name}'s; tune an adapter instead"
            )
        data = self.store.training_data(team_id, set_name)
        _require_two_labels(data.labels, set_name)
        training, held = split(data.labels, seed=seed)
        texts = [data.texts[i] for i in training]
        labels = [data.labels[i] for i in training]
        plain = self.embeddings.embed(data.texts, task_type=TaskType.CLASSIFICATION)
        if kind == KIND_ENCODER:
            from core.tuning.encoder import EncoderPlan, tune_encoder  # torch loads only to tune

            weights = tune_encoder(
                embedder,
                texts,
                labels,
                plan=EncoderPlan(budget_seconds=self.settings.tune_budget_seconds),
                seed=seed,
                progress=progress,
            )
        else:
            from core.tuning.adapter import tune_adapter

            weights = tune_adapter(plain[training], labels, base=base_id(embedder), texts=texts)
            if progress is not None:
                progress(1, 1)
        blob = weights.to_bytes()
        weights_digest = digest(blob)
        candidate = self._load_tuned(weights, weights_digest)
        # Embedded directly, not through the cache: weights that lose are never used again.
        if isinstance(candidate, CachedEmbedder):
            tuned = candidate.embedder.embed_batch(data.texts, task_type=TaskType.CLASSIFICATION)
        else:
            tuned = candidate.transform(plain)
        verdict = compare(
            plain, tuned, data.labels, training, held, target_coverage=self.settings.target_coverage
        )
        seconds = float(weights.details.get("seconds", 0.0))
        kept = False
        if verdict.better:
            kept = self.store.save_tuned_encoder(
                TunedEncoderInput(
                    team_id=team_id,
                    set_name=set_name,
                    set_version=data.version,
                    base=weights.base,
                    kind=kind,
                    format=TUNED_FORMAT,
                    examples=len(texts),
                    seconds=seconds,
                ),
                blob,
            )
            if kept:
                # Already built (a tuned MiniLM is a 90 MB copy): served as it is, not read back.
                with self._tuned_lock:
                    self._remember_tuned(weights_digest, candidate)
            if kept and isinstance(candidate, CachedEmbedder):
                # The examples' tuned vectors are at hand: the head below need not embed them again.
                key = candidate.key(TaskType.CLASSIFICATION)
                self.store.put_vectors(key, {text_hash(t): v for t, v in zip(data.texts, tuned, strict=True)})
        else:
            # The plain model did as well: classify with it, and drop weights an older tune left.
            self.store.forget_tuned_encoder(team_id, set_name)
        # Fitted (and kept) now, so the first classification after a tune does not wait for it.
        self.model_for(team_id, set_name)
        return TuneOutcome(
            set_name=set_name,
            set_version=data.version,
            kind=kind,
            examples=len(texts),
            seconds=seconds,
            details=dict(weights.details),
            kept=kept,
            verdict=verdict,
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
