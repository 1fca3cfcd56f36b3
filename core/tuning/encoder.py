"""Contrastive fine-tuning of the local MiniLM on a label set's own examples (SetFit's first step).

Each step takes a batch of distinct labels, two examples of each, and trains with
sentence-transformers' `MultipleNegativesRankingLoss`: every example is pulled towards the other
example of its label and pushed from the other labels in the batch. Drawing distinct labels means
no in-batch "negative" is secretly a positive. The head is fitted afterwards on the tuned vectors
by `core.classify.train`, like any other embedder's.

The lower layers stay frozen: training them costs most of the backward pass, and changes little
that a few hundred examples can teach; and only the tensors that changed are kept, a fraction of
the model's 90 MB.

Bounded on time, not only steps: after a few steps the pace is measured and the plan cut to fit
`budget_seconds`, the learning-rate schedule following the new plan.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.embeddings.tuned import KIND_ENCODER, TunedWeights, base_id, seen_tensor
from core.errors import InvalidInput

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EncoderPlan:
    """How long and how hard to train. `pairs_per_example`: how many times each example is seen
    on average; `frozen_layers`: transformer layers (of 6) left as they are."""

    pairs_per_example: float = 20.0
    min_steps: int = 60
    max_steps: int = 3000
    batch_labels: int = 32
    learning_rate: float = 3e-5
    warmup: float = 0.1
    frozen_layers: int = 2
    scale: float = 20.0
    budget_seconds: float | None = None


def planned_steps(n_examples: int, n_labels: int, plan: EncoderPlan) -> int:
    per_step = 2 * min(plan.batch_labels, n_labels)
    return int(
        min(plan.max_steps, max(plan.min_steps, math.ceil(plan.pairs_per_example * n_examples / per_step)))
    )


def _layer(name: str) -> int | None:
    marker = ".layer."
    if marker not in name:
        return None
    return int(name.split(marker, 1)[1].split(".", 1)[0])


def _trainable(model: Any, frozen_layers: int) -> dict[str, Any]:
    trainable = {}
    for name, parameter in model.named_parameters():
        layer = _layer(name)
        frozen = "embeddings" in name or (layer is not None and layer < frozen_layers)
        parameter.requires_grad_(not frozen)
        if not frozen:
            trainable[name] = parameter
    return trainable


def tune_encoder(
    base: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    plan: EncoderPlan = EncoderPlan(),
    seed: int = 0,
    progress: Progress | None = None,
) -> TunedWeights:
    """Fine-tune a copy of `base` (a `LocalEmbedder`) on the examples; the base is not touched.

    Needs two labels with at least two examples each (a pair cannot be drawn from one example;
    labels with a single example still serve as negatives). `progress(step, steps)` is called after
    every step; the total may shrink once when the time budget is applied.
    """
    import copy

    import torch

    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # sentence-transformers before 6 kept its losses at the top
        from sentence_transformers.losses import MultipleNegativesRankingLoss  # type: ignore[no-redef]

    if len(texts) != len(labels):
        raise InvalidInput(f"got {len(texts)} texts but {len(labels)} labels")
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(str(label), []).append(text)
    pairable = sorted(label for label, rows in by_label.items() if len(rows) >= 2)
    if len(by_label) < 2 or not pairable:
        raise InvalidInput("tuning needs at least two labels, one of them with two or more examples")
    names = sorted(by_label)

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = copy.deepcopy(base._model())
    model.train()
    trainable = _trainable(model, plan.frozen_layers)
    loss = MultipleNegativesRankingLoss(model, scale=plan.scale)
    # `preprocess` since sentence-transformers 6; `tokenize` before.
    features = getattr(model, "preprocess", None) or model.tokenize
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=plan.learning_rate, weight_decay=0.01)
    total = planned_steps(len(texts), len(names), plan)
    schedule = {"total": total}

    def rate(step: int) -> float:
        warm = max(1, int(plan.warmup * schedule["total"]))
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (schedule["total"] - step) / max(1, schedule["total"] - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    started = time.monotonic()
    step = 0
    losses_seen: list[float] = []
    while step < schedule["total"]:
        # Anchors come from labels with a pair; the batch is filled with distinct labels only.
        anchors_from = rng.sample(pairable, min(plan.batch_labels, len(pairable)))
        pairs = [rng.sample(by_label[label], 2) for label in anchors_from]
        value = loss([features([a for a, _ in pairs]), features([b for _, b in pairs])], None)
        value.backward()
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses_seen.append(float(value.detach()))
        step += 1
        if step == 5 and plan.budget_seconds is not None:
            pace = (time.monotonic() - started) / step
            schedule["total"] = max(step, min(schedule["total"], int(plan.budget_seconds / pace)))
        if progress is not None:
            progress(step, schedule["total"])
    model.eval()
    tensors = {name: p.detach().cpu().numpy().astype(np.float32) for name, p in trainable.items()}
    # Which examples it has seen: their thresholds and confidence would flatter it (`train(seen=)`).
    tensors["trained_on"] = seen_tensor(texts)
    return TunedWeights(
        kind=KIND_ENCODER,
        base=base_id(base),
        tensors=tensors,
        details={
            "loss": "MultipleNegativesRankingLoss",
            "steps": step,
            "frozen_layers": plan.frozen_layers,
            "final_loss": round(float(np.mean(losses_seen[-20:])), 4),
            "seconds": round(time.monotonic() - started, 1),
        },
    )
