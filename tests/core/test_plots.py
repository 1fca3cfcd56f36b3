"""The PNG charts: valid images of a sane size, that react to their input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidInput
from core.plots import confusion_png, heatmap_png, label_counts_png, scatter_png, shorten

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert 2_000 < len(data) < 2_000_000
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert 200 <= width <= 2000 and 150 <= height <= 2100
    return width, height


def test_heatmap() -> None:
    matrix = np.array([[1.0, 0.4, -0.2], [0.4, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    data = heatmap_png(matrix, ["first text", "second", "a very long text " * 10])
    check_png(data)
    assert heatmap_png(matrix * 0.5, ["first text", "second", "third"]) != data


def test_heatmap_of_many_labels_grows_but_stays_bounded() -> None:
    small = check_png(heatmap_png(np.eye(3), ["a", "b", "c"]))
    large = check_png(heatmap_png(np.eye(60), [f"label {i}" for i in range(60)]))
    assert large[0] > small[0]


def test_confusion() -> None:
    data = confusion_png(np.array([[5, 1], [0, 4]]), ["refund", "complaint"])
    check_png(data)
    assert confusion_png(np.array([[6, 0], [0, 4]]), ["refund", "complaint"]) != data


def test_scatter_with_texts_and_titles() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 2))
    groups = np.arange(12) % 3
    plain = scatter_png(points, groups)
    check_png(plain)
    named = scatter_png(points, groups, texts=[f"text number {i}" for i in range(12)], titles={0: "Billing"})
    check_png(named)
    assert named != plain


def test_scatter_of_many_clusters_and_points() -> None:
    rng = np.random.default_rng(1)
    check_png(scatter_png(rng.normal(size=(300, 2)), np.arange(300) % 14, texts=["t"] * 300))


def test_label_counts() -> None:
    data = label_counts_png({"refund": 12, "a rather long label name that goes on": 3, "complaint": 7})
    check_png(data)
    tall = check_png(label_counts_png({f"label {i}": i + 1 for i in range(77)}))
    short = check_png(label_counts_png({"a": 1, "b": 2}))
    assert tall[1] > short[1]


def test_bad_inputs_are_invalid() -> None:
    with pytest.raises(InvalidInput, match="square"):
        heatmap_png(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(InvalidInput, match="labels"):
        confusion_png(np.ones((2, 2)), ["a"])
    with pytest.raises(InvalidInput, match="shape"):
        scatter_png(np.ones((3, 3)), np.zeros(3))
    with pytest.raises(InvalidInput, match="one cluster"):
        scatter_png(np.ones((3, 2)), np.zeros(2))
    with pytest.raises(InvalidInput, match="no labels"):
        label_counts_png({})


def test_shorten() -> None:
    assert shorten("short") == "short"
    assert shorten("line one\nline   two") == "line one line two"
    cut = shorten("x" * 100)
    assert len(cut) == 24 and cut.endswith("…")


def test_dollar_signs_are_drawn_as_typed() -> None:
    assert shorten("$5 or $10") == r"\$5 or \$10"
    # Unescaped, matplotlib would read these as mathtext and fail to draw.
    labels = ["costs $x^$ now", r"$\nosuchsymbol$"]
    assert heatmap_png(np.eye(2), labels).startswith(b"\x89PNG")
    scatter = scatter_png(np.eye(2), np.array([0, 1]), texts=labels, titles={0: "$$", 1: "$^$"})
    assert scatter.startswith(b"\x89PNG")
