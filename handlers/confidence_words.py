"""A classifier's confidence in the words people read as that probability: "likely: billing (72%)".

The bands follow how readers take these words in surveys of estimative language (Sherman Kent's
"Words of Estimative Probability"; Mauboussin & Mauboussin, "If You Say Something Is 'Likely,'
How Likely Do People Think It Is?", HBR 2018): "almost certainly" is read near the top of the
scale, "likely" and "probably" alike, around 70%, "maybe" near even odds and "possibly" below
them. So "probably" is not used for the 50–70% band, where it would overstate: a reader would take
"probably: billing (55%)" as the same claim as "likely".
"""

from __future__ import annotations

import math

#: (lowest whole percent, words), strongest first; the last band takes everything below.
BANDS: tuple[tuple[int, str], ...] = (
    (90, "almost certainly"),
    (70, "likely"),
    (50, "maybe"),
    (0, "possibly"),
)


def whole_percent(probability: float) -> int:
    """`probability` as a whole percent from 1 to 99: never "100%" (nor "0%"), since no set of
    examples makes a classifier certain, and a reader takes "100%" as a promise."""
    p = float(probability) if math.isfinite(probability) else 0.0
    return min(max(round(p * 100), 1), 99)


def words(probability: float) -> str:
    """The words for `probability` ("almost certainly", "likely", "maybe", "possibly").

    The band is chosen on the whole percent shown beside the words, so that 69.6% (shown "70%")
    reads "likely", as its number does.
    """
    shown = whole_percent(probability)
    for lowest, said in BANDS:
        if shown >= lowest:
            return said
    return BANDS[-1][1]


def stated(probability: float) -> tuple[str, str]:
    """The words and the percent for `probability`: ("likely", "72%")."""
    return words(probability), f"{whole_percent(probability)}%"
