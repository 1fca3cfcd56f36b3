"""The `--plot` chart of `show` and `compare`: score, cost and latency per model, side by side.

One PNG, drawn like `core.plots` (its own `Figure` on matplotlib's Agg canvas: no pyplot, no
display, safe from any thread). Panels share the models' axis, one horizontal bar per row
(experiment/model), so long names stay readable: the score with its 95% interval as an error bar
(one panel per scale present: the share right, the judge's 1–5 mean), then the cost, then the
median latency with a whisker to p95. No score panel when nothing was graded; a model whose
price is unknown gets no cost bar and a `?`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.errors import InvalidInput
from core.experiments.summary import ModelSummary, Scale, money
from core.plots import DPI, shorten

_COLOURS = {"share": "#4C72B0", "judge": "#8172B2", "cost": "#55A868", "latency": "#C44E52"}


def comparison_plot(rows: Sequence[tuple[str, ModelSummary]]) -> bytes:
    """A PNG comparing the summaries, one bar per (experiment label, summary), in the given order."""
    if not rows:
        raise InvalidInput("nothing to draw: no models")
    names = [shorten(f"{label}/{s.model}" if label else s.model, 36) for label, s in rows]
    summaries = [s for _, s in rows]
    scales: list[Scale] = [
        scale
        for scale in ("share", "judge")
        if any(s.scale == scale and s.score is not None for s in summaries)
    ]
    panels = len(scales) + 2
    height = float(min(max(1.2 + 0.45 * len(rows), 2.8), 16.0))
    figure = Figure(figsize=(3.6 * panels + 1.6, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, panels, sharey=True, squeeze=False)[0]
    positions = np.arange(len(rows))
    for panel, scale in zip(axes, scales, strict=False):
        _scores(panel, positions, summaries, scale)
    _costs(axes[len(scales)], positions, summaries)
    _latencies(axes[len(scales) + 1], positions, summaries)
    axes[0].set_yticks(positions, names, fontsize=8)
    axes[0].invert_yaxis()
    for panel in axes:
        panel.grid(axis="x", alpha=0.3)
        panel.set_axisbelow(True)
    figure.suptitle("Experiment comparison", fontsize=11)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _scores(axes: Axes, positions: np.ndarray, summaries: Sequence[ModelSummary], scale: Scale) -> None:
    factor = 100.0 if scale == "share" else 1.0
    values, below, above = [], [], []
    for s in summaries:
        shown = (
            s.scale == scale and s.score is not None and s.score_low is not None and s.score_high is not None
        )
        score = (s.score or 0.0) * factor if shown else np.nan
        values.append(score)
        # Clipped at 0: matplotlib refuses a negative error, and a summary is data, not a promise.
        below.append(max(score - (s.score_low or 0.0) * factor, 0.0) if shown else 0.0)
        above.append(max((s.score_high or 0.0) * factor - score, 0.0) if shown else 0.0)
    axes.barh(
        positions,
        values,
        xerr=[below, above],
        color=_COLOURS[scale],
        error_kw={"ecolor": "black", "capsize": 3, "linewidth": 1},
    )
    if scale == "share":
        axes.set_xlim(0, 112)  # room for the label of a bar at 100%
        axes.set_xticks([0, 25, 50, 75, 100])
        axes.set_xlabel("right (%), 95% CI")
        axes.set_title("Score")
    else:
        axes.set_xlim(1, 5.5)
        axes.set_xticks([1, 2, 3, 4, 5])
        axes.set_xlabel("judge's grade (1–5), 95% CI")
        axes.set_title("Judge's score")
    for y, value in zip(positions, values, strict=True):
        if not np.isnan(value):
            axes.annotate(
                f"{value:.0f}%" if scale == "share" else f"{value:.2f}",
                (value, y),
                xytext=(3, 5),
                textcoords="offset points",
                fontsize=7,
            )


def _costs(axes: Axes, positions: np.ndarray, summaries: Sequence[ModelSummary]) -> None:
    values = [s.cost if s.cost is not None else 0.0 for s in summaries]
    bars = axes.barh(positions, values, color=_COLOURS["cost"])
    axes.bar_label(bars, labels=[money(s.cost) for s in summaries], padding=3, fontsize=7)
    axes.set_xlabel("USD (answers, estimated)")
    axes.set_title("Cost")
    axes.margins(x=0.3)


def _latencies(axes: Axes, positions: np.ndarray, summaries: Sequence[ModelSummary]) -> None:
    p50 = [(s.latency_p50_ms or 0.0) / 1000 for s in summaries]
    p95 = [(s.latency_p95_ms or 0.0) / 1000 for s in summaries]
    spread = [max(high - low, 0.0) for low, high in zip(p50, p95, strict=True)]
    axes.barh(
        positions,
        p50,
        xerr=[[0.0] * len(p50), spread],
        color=_COLOURS["latency"],
        error_kw={"ecolor": "black", "capsize": 3, "linewidth": 1},
    )
    axes.set_xlabel("seconds (bar p50, whisker p95)")
    axes.set_title("Latency")
    axes.margins(x=0.15)
