"""A label set's own embedder: the local model fine-tuned on the set, or an adapter over frozen vectors.

`gembot tune` produces one of two kinds of weights (`core.tuning`):

- "encoder": the local MiniLM with some of its layers fine-tuned on the set's examples. Only the
  tensors that training changed are kept; the rest come from the installed base model.
- "adapter": a linear map applied to an embedder's frozen vectors (Gemini's cannot be
  fine-tuned), `x -> (x - shift) @ matrix`, followed by unit length.

Both are kept as bytes in the database (`Store.save_tuned_encoder`), so every worker finds them.
The bytes are a `safetensors` archive, which holds tensors and a JSON header and nothing that can
run; `TUNED_FORMAT` is in the header, and weights in another format are tuned again, never read.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.embeddings.base import Embedder, TaskType
from core.embeddings.cache import CachedEmbedder
from core.errors import InvalidInput
from core.similarity import normalize_rows
from core.store import CacheKey, text_hash

#: The layout of the bytes `TunedWeights.to_bytes` writes. Bump it when that layout or the meaning
#: of a tensor changes: weights kept under another number are tuned again, never read.
TUNED_FORMAT = 1
KIND_ENCODER = "encoder"
KIND_ADAPTER = "adapter"
KINDS = (KIND_ENCODER, KIND_ADAPTER)
_META = "__gembot__"


class UnknownTunedFormat(InvalidInput):
    """Bytes that are not tuned weights this version reads: the set is to be tuned again."""


def base_id(embedder: Embedder) -> str:
    """Which embedder weights were tuned from: they fit that embedder and no other."""
    return f"{embedder.name}/{embedder.model}/{embedder.dimensions}"


@dataclass(frozen=True)
class TunedWeights:
    """What tuning learnt: `kind` ("encoder" or "adapter"), the `base` embedder it applies to
    (`base_id`), and its tensors by name. `details` are plain facts kept beside them (the loss,
    steps, seconds), for people to read."""

    kind: str
    base: str
    tensors: dict[str, np.ndarray]
    details: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        header = {"format": TUNED_FORMAT, "kind": self.kind, "base": self.base, "details": self.details}
        tensors = {name: np.ascontiguousarray(t) for name, t in self.tensors.items()}
        # The header rides as a tensor of bytes: safetensors' own metadata holds strings only.
        tensors[_META] = np.frombuffer(json.dumps(header, allow_nan=False).encode(), dtype=np.uint8)
        return bytes(save(tensors))

    @classmethod
    def from_bytes(cls, blob: bytes) -> TunedWeights:
        """The weights `to_bytes` wrote; UnknownTunedFormat for another format or damaged bytes."""
        from safetensors.numpy import load

        try:
            tensors = dict(load(bytes(blob)))
            header = json.loads(tensors.pop(_META).tobytes())
        except Exception as exc:  # safetensors raises its own SafetensorError, among others
            raise UnknownTunedFormat(f"not tuned weights: {type(exc).__name__}") from exc
        if not isinstance(header, dict) or header.get("format") != TUNED_FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise UnknownTunedFormat(f"tuned weights in format {found!r}, not {TUNED_FORMAT}")
        if header.get("kind") not in KINDS or not isinstance(header.get("base"), str):
            raise UnknownTunedFormat("damaged tuned weights: no kind or base")
        return cls(
            kind=str(header["kind"]),
            base=str(header["base"]),
            tensors=tensors,
            details=dict(header.get("details") or {}),
        )


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


#: Bytes of each trained-on text's sha256 kept with the weights: enough to tell 10,000 texts apart.
_SEEN_BYTES = 8


def seen_tensor(texts: Sequence[str]) -> np.ndarray:
    """The texts tuning trained on, as a tensor of their hashes' first bytes (`seen_mask` reads it)."""
    rows = [bytes.fromhex(text_hash(t))[:_SEEN_BYTES] for t in texts]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), _SEEN_BYTES)


def seen_mask(weights: TunedWeights, texts: Sequence[str]) -> np.ndarray:
    """Which of `texts` the weights were trained on: a boolean per text."""
    kept = weights.tensors.get("trained_on")
    if kept is None:
        return np.zeros(len(texts), dtype=bool)
    known = {bytes(row) for row in np.asarray(kept, dtype=np.uint8).reshape(-1, _SEEN_BYTES)}
    return np.array([bytes.fromhex(text_hash(t))[:_SEEN_BYTES] in known for t in texts], dtype=bool)


def _expect(weights: TunedWeights, kind: str) -> None:
    if weights.kind != kind:
        raise InvalidInput(f"not {kind} weights but {weights.kind!r}")


def _tuned_model(base_model: str, weights_digest: str) -> str:
    """The model name of a tuned embedder: its base's and its weights', so the vectors of two
    tunes never share a cache key."""
    return f"{base_model}@{weights_digest[:16]}"


class AdaptedEmbeddings:
    """A set's adapter over the cached base embeddings: `unit((base(x) - shift) @ matrix)`.

    It has `CachedEmbedder`'s interface (`embed`, `key`, `dimensions`, `embedder`) and embeds
    through the base one, so the base vectors are paid for once and shared with every other use of
    the same texts; the adapter itself costs one matrix product, so its output is not cached.
    """

    def __init__(self, base: CachedEmbedder, weights: TunedWeights, weights_digest: str) -> None:
        _expect(weights, KIND_ADAPTER)
        matrix = np.asarray(weights.tensors.get("matrix"), dtype=np.float32)
        shift = np.asarray(weights.tensors.get("shift"), dtype=np.float32)
        d = base.dimensions
        if matrix.ndim != 2 or matrix.shape[0] != d or shift.shape != (d,):
            raise UnknownTunedFormat("damaged adapter: its shape does not fit the embedder")
        self.base = base
        self.embedder = base.embedder
        self.weights = weights
        self._matrix = matrix
        self._shift = shift
        self._model = _tuned_model(base.embedder.model, weights_digest)

    @property
    def dimensions(self) -> int:
        return int(self._matrix.shape[1])

    def key(self, task_type: TaskType) -> CacheKey:
        base = self.base.key(task_type)
        return CacheKey(f"{base.embedder}+adapter", self._model, base.task_type, self.dimensions)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """The adapter applied to base vectors already at hand."""
        out = (np.asarray(vectors, dtype=np.float32) - self._shift) @ self._matrix
        return normalize_rows(out).astype(np.float32)

    def embed(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        return self.transform(self.base.embed(texts, task_type=task_type))


class TunedLocalEmbedder(Embedder):
    """The local MiniLM with a set's fine-tuned layers: its own copy of the model, ~90 MB."""

    name = "local-tuned"
    uses_task_type = False

    def __init__(self, base: Any, weights: TunedWeights, weights_digest: str) -> None:
        """`base` is the `LocalEmbedder` the weights were tuned from."""
        _expect(weights, KIND_ENCODER)
        import torch

        model = copy.deepcopy(base._model())
        state = model.state_dict()
        layers = {n: t for n, t in weights.tensors.items() if n != "trained_on"}
        unknown = [name for name in layers if name not in state]
        wrong = [n for n, t in layers.items() if n in state and tuple(state[n].shape) != t.shape]
        if unknown or wrong:
            raise UnknownTunedFormat("damaged encoder weights: they do not fit the local model")
        tensors = {n: torch.from_numpy(np.array(t, dtype=np.float32)) for n, t in layers.items()}
        model.load_state_dict(tensors, strict=False)
        model.eval()
        self._base = base
        self.weights = weights
        self._st = model
        self._model = _tuned_model(base.model, weights_digest)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return int(self._base.dimensions)

    def too_long(self, texts: Sequence[str]) -> list[int]:
        return self._base.too_long(texts)

    @property
    def max_input(self) -> str:
        return self._base.max_input

    def embed_batch(self, texts: Sequence[str], *, task_type: TaskType) -> np.ndarray:
        return np.asarray(self._base.encode_with(self._st, texts))
