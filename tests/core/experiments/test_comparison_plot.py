"""The comparison chart: a valid PNG of a sane size, with a score panel only when something was graded."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from core.errors import InvalidInput
from core.experiments.comparison_plot import comparison_plot
from core.experiments.summary import ModelSummary

SUMMARY = ModelSummary(
    model="gemini-2.5-flash",
    rows=40,
    answered=38,
    refused=1,
    stopped=0,
    errors=1,
    cached=0,
    scale="share",
    scored=38,
    score=0.8,
    score_low=0.65,
    score_high=0.9,
    latency_p50_ms=850.0,
    latency_p95_ms=2100.0,
    input_tokens=12_000,
    output_tokens=3_000,
    thinking_tokens=0,
    judge_input_tokens=0,
    judge_output_tokens=0,
    cost=0.0111,
    judge_cost=0.0,
    paid=0.0111,
)
UNGRADED = replace(SUMMARY, scale=None, scored=0, score=None, score_low=None, score_high=None)


def size_of(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 2_000 < len(data) < 3_000_000
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert 300 <= width <= 3000 and 150 <= height <= 2000
    return width, height


def test_a_comparison_of_models() -> None:
    lite = replace(
        SUMMARY, model="gemini-2.5-flash-lite", score=0.6, score_low=0.44, score_high=0.74, cost=None
    )
    data = comparison_plot(
        [("#1", SUMMARY), ("#1", lite), ("#2 a very long experiment name indeed", SUMMARY)]
    )
    size_of(data)
    assert comparison_plot([("#1", SUMMARY), ("#1", replace(lite, score=0.1))]) != comparison_plot(
        [("#1", SUMMARY), ("#1", lite)]
    )


def test_no_score_panel_when_nothing_was_graded() -> None:
    graded = size_of(comparison_plot([("", SUMMARY)]))
    ungraded = size_of(comparison_plot([("", UNGRADED)]))
    assert ungraded[0] < graded[0]  # one panel fewer
    assert ungraded[1] == graded[1]


def test_shares_and_judge_grades_get_a_panel_each() -> None:
    judged = replace(SUMMARY, model="judged", scale="judge", score=4.2, score_low=3.9, score_high=4.5)
    both = size_of(comparison_plot([("#1", SUMMARY), ("#2", judged)]))
    one = size_of(comparison_plot([("#1", SUMMARY), ("#2", SUMMARY)]))
    assert both[0] > one[0]


def test_many_models_make_a_taller_chart_within_bounds() -> None:
    few = size_of(comparison_plot([("", SUMMARY)] * 2))
    many = size_of(comparison_plot([(f"#{i}", SUMMARY) for i in range(40)]))
    assert many[1] > few[1]


def test_nothing_to_draw() -> None:
    with pytest.raises(InvalidInput):
        comparison_plot([])
