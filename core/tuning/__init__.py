"""Tuning: a label set's own embedder, learnt from its examples (`gembot tune`).

The local MiniLM is fine-tuned contrastively (`core.tuning.encoder`, needs torch); an embedder
that cannot be fine-tuned, such as Gemini's, gets a linear adapter over its frozen vectors
(`core.tuning.adapter`, numpy and scikit-learn only). Either way the result is `TunedWeights`,
and the classifier's head is fitted on the tuned vectors by `core.classify.train`, as for any
embedder.
"""

from __future__ import annotations

from core.embeddings.tuned import KIND_ADAPTER, KIND_ENCODER, KINDS, TunedWeights

__all__ = ["KINDS", "KIND_ADAPTER", "KIND_ENCODER", "TunedWeights", "default_kind"]


def default_kind(embedder_name: str) -> str:
    """The kind of tuning an embedder gets unless asked otherwise: the local model can be fine-tuned."""
    return KIND_ENCODER if embedder_name == "local" else KIND_ADAPTER
