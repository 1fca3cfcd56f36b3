"""PNG charts for similarity, clusters, confusion and label sizes, drawn with matplotlib's Agg canvas.

Each function builds its own `Figure` and renders it through `FigureCanvasAgg`: no pyplot, no
global state, safe from any thread, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.errors import InvalidInput

#: Tick labels and annotations longer than this are cut with an ellipsis.
MAX_LABEL_CHARS = 24
#: Cells are annotated with their value only up to this many rows/columns; beyond, too small to read.
MAX_ANNOTATED = 15
#: Points are annotated with their text only up to this many.
MAX_POINT_NOTES = 40
DPI = 100


def shorten(text: str, width: int = MAX_LABEL_CHARS) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis when longer.

    `$` comes back escaped: matplotlib reads text between two of them as mathtext, so "$5 or $10"
    would show in italics and "$x^$" would fail to draw at all.
    """
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"
    return flat.replace("$", r"\$")


def _size(
    count: int, *, base: float = 3.0, per_item: float = 0.3, low: float = 4.0, high: float = 14.0
) -> float:
    return float(min(max(base + per_item * count, low), high))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _square(matrix: np.ndarray, labels: Sequence[str], what: str) -> np.ndarray:
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise InvalidInput(f"a {what} needs a square matrix, not shape {array.shape}")
    if len(labels) != array.shape[0]:
        raise InvalidInput(f"a {what} of {array.shape[0]} rows needs as many labels, not {len(labels)}")
    if array.shape[0] == 0:
        raise InvalidInput(f"nothing to draw: the {what} is empty")
    return array


def _matrix_plot(
    array: np.ndarray, labels: Sequence[str], *, cmap: str, low: float, high: float | None, scale: str
) -> tuple[Figure, Axes]:
    """A figure of the square `array` as an image (colours `cmap` from `low` to `high`, None: its
    largest value), its colour bar named `scale`, each row and column named by its label."""
    n = len(labels)
    side = _size(n, base=4.0)
    figure = Figure(figsize=(side + 1.5, side), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(array, cmap=cmap, vmin=low, vmax=high)
    figure.colorbar(image, ax=axes, label=scale, shrink=0.8)
    font = 9.0 if n <= MAX_ANNOTATED else max(4.0, 9.0 - n / 15)
    ticks = np.arange(n)
    short = [shorten(label) for label in labels]
    axes.set_xticks(ticks, short, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    axes.set_yticks(ticks, short, fontsize=font)
    return figure, axes


def heatmap_png(matrix: np.ndarray, labels: Sequence[str]) -> bytes:
    """A similarity matrix as a heatmap (colour scale from min(0, lowest) to 1), values in small ones."""
    array = _square(matrix, labels, "heatmap")
    low = min(0.0, float(array.min()))
    figure, axes = _matrix_plot(array, labels, cmap="viridis", low=low, high=1.0, scale="cosine similarity")
    if len(labels) <= MAX_ANNOTATED:
        for (i, j), value in np.ndenumerate(array):
            colour = "white" if value < (low + 1.0) / 2 else "black"
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    axes.set_title("Similarity")
    return _png(figure)


def confusion_png(matrix: np.ndarray, labels: Sequence[str]) -> bytes:
    """A confusion matrix (rows: true label, columns: predicted) with counts in the cells when small."""
    array = _square(matrix, labels, "confusion matrix")
    figure, axes = _matrix_plot(array, labels, cmap="Blues", low=0.0, high=None, scale="examples")
    if len(labels) <= MAX_ANNOTATED:
        top = float(array.max()) or 1.0
        for (i, j), value in np.ndenumerate(array):
            if value:
                colour = "white" if value > top / 2 else "black"
                axes.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8, color=colour)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true label")
    axes.set_title("Confusion matrix")
    return _png(figure)


def scatter_png(
    points_2d: np.ndarray,
    assignments: np.ndarray,
    texts: Sequence[str] | None = None,
    titles: Mapping[int, str] | None = None,
) -> bytes:
    """Points in 2-D coloured by cluster, a legend naming each cluster (`titles`, else "cluster N"),
    and each point's text (shortened) next to it when there are few enough."""
    points = np.asarray(points_2d, dtype=np.float64)
    groups = np.asarray(assignments).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InvalidInput(f"a scatter plot needs points of shape (n, 2), not {points.shape}")
    if len(groups) != len(points) or (texts is not None and len(texts) != len(points)):
        raise InvalidInput("a scatter plot needs one cluster (and one text, if any) per point")
    figure = Figure(figsize=(8, 6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    palette = colormaps["tab10" if len(np.unique(groups)) <= 10 else "tab20"]
    for n_group, group in enumerate(np.unique(groups)):
        mask = groups == group
        name = (titles or {}).get(int(group), f"cluster {int(group) + 1}")
        axes.scatter(
            points[mask, 0],
            points[mask, 1],
            s=40,
            color=palette(n_group % palette.N),
            label=shorten(f"{name} ({int(mask.sum())})", 40),
            edgecolors="white",
            linewidths=0.5,
        )
    if texts is not None and len(points) <= MAX_POINT_NOTES:
        for (x, y), text in zip(points, texts, strict=True):
            axes.annotate(shorten(text), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    if len(points):
        axes.legend(loc="best", fontsize=8, frameon=True)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title("Clusters (2-D projection)")
    return _png(figure)


def label_counts_png(
    counts: Mapping[str, int], *, title: str = "Examples per label", unit: str = "examples"
) -> bytes:
    """Counts per label as horizontal bars, largest first, each bar annotated with its count.

    `title` and `unit` (the x axis) default to a label set's examples; a bulk classification
    counts rows.
    """
    if not counts:
        raise InvalidInput("nothing to draw: no labels")
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    names = [shorten(name) for name, _ in ordered]
    values = [value for _, value in ordered]
    figure = Figure(
        figsize=(7, _size(len(ordered), base=1.5, per_item=0.28, low=2.5, high=20)),
        dpi=DPI,
        layout="constrained",
    )
    axes = figure.add_subplot()
    positions = np.arange(len(ordered))
    bars = axes.barh(positions, values, color="#4C72B0")
    axes.set_yticks(positions, names, fontsize=8 if len(ordered) <= 30 else 6)
    axes.invert_yaxis()
    axes.bar_label(bars, padding=3, fontsize=7)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(unit)
    axes.margins(x=0.12)
    axes.set_title(title)
    return _png(figure)
