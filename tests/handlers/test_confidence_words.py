"""The words a confidence is stated in: one band each, chosen on the percent shown beside them."""

from __future__ import annotations

import pytest

from handlers.confidence_words import stated, whole_percent, words


@pytest.mark.parametrize(
    ("probability", "said", "shown"),
    [
        (0.97, "almost certainly", "97%"),
        (0.90, "almost certainly", "90%"),
        (0.72, "likely", "72%"),
        (0.70, "likely", "70%"),
        (0.69, "maybe", "69%"),
        (0.55, "maybe", "55%"),
        (0.50, "maybe", "50%"),
        (0.49, "possibly", "49%"),
        (0.12, "possibly", "12%"),
    ],
)
def test_each_band_has_its_words(probability: float, said: str, shown: str) -> None:
    assert stated(probability) == (said, shown)


def test_the_band_follows_the_number_shown() -> None:
    # 89.6% shows as "90%", so it reads as the 90% band does; 89.4% shows "89%".
    assert stated(0.896) == ("almost certainly", "90%")
    assert stated(0.894) == ("likely", "89%")
    assert stated(0.696) == ("likely", "70%")
    assert words(0.4949) == "possibly"


def test_never_certain_never_impossible() -> None:
    assert [whole_percent(p) for p in (1.0, 0.999, 0.995)] == [99, 99, 99]
    assert [whole_percent(p) for p in (0.0, 0.001, -0.5)] == [1, 1, 1]
    assert whole_percent(1.5) == 99 and whole_percent(float("nan")) == 1
    assert stated(1.0) == ("almost certainly", "99%")
