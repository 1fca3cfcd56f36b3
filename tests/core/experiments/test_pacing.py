"""Pacing: one limiter per model, and requests handed to the model with the fewest in flight."""

from __future__ import annotations

from dataclasses import dataclass

from core.experiments.pacing import ModelLimiters, ModelQueues

MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash")


@dataclass(frozen=True)
class Planned:
    model: str
    row_index: int


def test_models_share_the_workers_so_one_spent_window_cannot_hold_them_all() -> None:
    # Requests are planned model by model; they are handed out to whichever model has fewest in
    # flight, so a worker stuck on one model's limiter never leaves the other model idle.
    todo = [Planned(model, row) for model in MODELS for row in range(3)]
    queues = ModelQueues(todo)
    first, second = queues.next(), queues.next()
    assert first is not None and second is not None and {first.model, second.model} == set(MODELS)
    queues.done(first.model)
    third = queues.next()
    assert third is not None and third.model == first.model and third.row_index == 1


def test_each_model_has_one_limiter_shared_by_every_run_and_none_without_a_limit() -> None:
    limiters = ModelLimiters(10, window=2.0)
    lite, again, flash = limiters(MODELS[0]), limiters(MODELS[0]), limiters(MODELS[1])
    assert lite is again and lite is not flash
    assert lite is not None and (lite.limit, lite.per) == (10, 2.0)
    assert ModelLimiters(0)(MODELS[0]) is None
