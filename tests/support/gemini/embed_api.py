"""`embedContent` and `batchEmbedContents`: a hashed bag of words, so texts that share words come
out close together, with the real API's checks on batch size, models, task types and sizes."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import numpy as np

from tests.support.gemini.models_api import EMBEDDING_SIZE, ModelInfo, find_model
from tests.support.gemini.replies import Reply, bad_request
from tests.support.gemini.wire import RecordedRequest, text_of

MAX_EMBED_BATCH = 100
TASK_TYPES = frozenset(
    [
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    ]
)


# Where a word's eight slots may fall: three in the leading 128 dimensions, two in the leading 768,
# three anywhere, so that every Matryoshka prefix still carries every word.
_SLOT_LIMITS = (128, 128, 128, 768, 768, 3072, 3072, 3072)


@functools.lru_cache(maxsize=1 << 16)
def _word_slots(word: str, full: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions one word adds to and the signs it adds, in a vector `full` wide (cached: a big
    job repeats words). A narrower model has only the slots of the prefixes it has, the leading
    ones always, folded into its width."""
    digest = hashlib.sha256(word.encode()).digest()
    kept = [s for s, limit in enumerate(_SLOT_LIMITS) if limit <= max(full, _SLOT_LIMITS[0])]
    indices = [int.from_bytes(digest[s * 3 : s * 3 + 2], "big") % min(_SLOT_LIMITS[s], full) for s in kept]
    signs = [1.0 if digest[s * 3 + 2] & 1 else -1.0 for s in kept]
    return np.array(indices, dtype=np.intp), np.array(signs)


def bag_of_words_vector(
    text: str, *, task_type: str | None = None, size: int = EMBEDDING_SIZE, full: int = EMBEDDING_SIZE
) -> np.ndarray:
    """The hashed bag-of-words embedding of `text`: unit length at `full`, its first `size` values.

    Each lowercased word adds +-1 at a few hashed positions, spread so that every Matryoshka
    prefix (128, 768, ...) still carries every word, like the real model keeps most of its
    meaning in the leading dimensions. A little noise seeded by the text and task type makes
    vectors differ per task type and keeps wordless texts from being zero. The stand-in's
    embedContent answers with it at `full` = 3072; `tests.support.fakes.BagOfWordsEmbedder` asks for
    a model as wide as its `dimensions`.
    """
    vector = np.zeros(full, dtype=np.float64)
    slots = [_word_slots(word, full) for word in re.findall(r"\w+", text.lower())]
    if slots:
        # Sums of whole numbers: exact in any order, so this equals adding word by word.
        np.add.at(vector, np.concatenate([i for i, _ in slots]), np.concatenate([s for _, s in slots]))
    seed = int.from_bytes(hashlib.sha256(f"{task_type or ''}\0{text}".encode()).digest()[:8], "big")
    vector += np.random.default_rng(seed).normal(0.0, 0.02, full)
    vector /= np.linalg.norm(vector)
    return vector[:size].astype(np.float32)


def embed(models: dict[str, ModelInfo], record: RecordedRequest) -> Reply:
    """`embedContent` (one item) or `batchEmbedContents` (up to `MAX_EMBED_BATCH`)."""
    model = find_model(models, record, "batchEmbedContents")
    body = record.payload
    batch = record.action == "batchEmbedContents"
    label = "BatchEmbedContentsRequest" if batch else "EmbedContentRequest"
    items: Any = body.get("requests") if batch else [body]
    if batch and (not isinstance(items, list) or not items):
        raise bad_request(f"* {label}.requests: requests is not specified\n")
    if batch and len(items) > MAX_EMBED_BATCH:
        raise bad_request(f"* {label}.requests: at most {MAX_EMBED_BATCH} requests can be in one batch\n")
    full = model.embedding_size or EMBEDDING_SIZE
    rows = []
    for index, item in enumerate(items):
        where = f"{label}.requests[{index}]" if batch else label
        if batch and item.get("model") != f"models/{record.model}":
            raise bad_request(
                f"* {where}.model: Model names should start with `models/` and match the model "
                f"of the batch request (models/{record.model}), got {item.get('model')!r}.\n"
            )
        content = item.get("content")
        if not isinstance(content, dict) or not content.get("parts"):
            raise bad_request(f"* {where}.content: content is not specified\n")
        task_type = item.get("taskType", item.get("task_type"))
        if task_type is not None and task_type not in TASK_TYPES:
            raise bad_request(
                f"Invalid value at '{where}.task_type' "
                f'(type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), "{task_type}"'
            )
        size = item.get("outputDimensionality", item.get("output_dimensionality"))
        if size is None:
            size = full
        if not isinstance(size, int) or not 1 <= size <= full:
            raise bad_request(f"* {where}.output_dimensionality: must be between 1 and {full}, got {size}\n")
        vector = bag_of_words_vector(text_of(content), task_type=task_type, size=size)
        rows.append(f'{{"values": [{_floats(vector)}]}}')
    if batch:
        return Reply(200, f'{{"embeddings": [{",".join(rows)}]}}'.encode())
    return Reply(200, f'{{"embedding": {rows[0]}}}'.encode())


def _floats(vector: np.ndarray) -> str:
    """`vector` as comma-separated JSON numbers, ~3x faster than json.dumps for 3072 floats."""
    return _float_format(len(vector)) % tuple(vector.tolist())


@functools.cache
def _float_format(size: int) -> str:
    return ",".join(["%.7g"] * size)
