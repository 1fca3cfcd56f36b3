"""What Gemini requests cost: USD per million tokens per model, and the cost of a request's tokens.

A built-in table covers the current Gemini models; GEMBOT_PRICES (JSON, `{"model": {"input": x,
"output": y}}`) adds models or replaces their prices. Output includes thinking tokens (Google
bills them as output). Requests sent through the Batch API cost half. Only the price for prompts
up to 200k tokens is kept: the Pro models charge more above that, so a cost for such prompts is
an underestimate. A model not in the table has no cost (None), never a guessed one.

A model name matches its exact entry, else the longest entry it extends by a version suffix only
(`-001`, `-preview-05-20`, `-exp`, `-latest`): `gemini-2.5-flash-001` is priced as
`gemini-2.5-flash`, but `gemini-2.5-flash-lite` or `gemini-2.5-flash-image` never are, since
`-lite` and `-image` name other models with other prices.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core.errors import InvalidInput

#: The Batch API's price, as a share of the interactive price.
BATCH_DISCOUNT = 0.5
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# What may follow a priced name and still be the same model: numbers, dates, preview tags.
_VERSION_SUFFIX = re.compile(r"(?:-(?:\d+|preview|exp|experimental|latest))+")


@dataclass(frozen=True)
class Price:
    """USD per million tokens: `input` (the prompt) and `output` (the answer and its thinking)."""

    input: float
    output: float


# Google's pricing page (ai.google.dev/gemini-api/docs/pricing), paid tier, text input, prompts up
# to 200k tokens, as published in January 2026 (read from copies of that page; check it when
# prices change, and override with GEMBOT_PRICES meanwhile).
BUILT_IN: Mapping[str, Price] = MappingProxyType(
    {
        "gemini-3-pro-preview": Price(input=2.00, output=12.00),
        "gemini-3-flash-preview": Price(input=0.50, output=3.00),
        "gemini-2.5-pro": Price(input=1.25, output=10.00),
        "gemini-2.5-flash": Price(input=0.30, output=2.50),
        "gemini-2.5-flash-lite": Price(input=0.10, output=0.40),
        "gemini-2.0-flash": Price(input=0.10, output=0.40),
        "gemini-2.0-flash-lite": Price(input=0.075, output=0.30),
    }
)


@dataclass(frozen=True)
class Prices:
    """A price table: the built-in one, or it updated by GEMBOT_PRICES (`parse`)."""

    table: Mapping[str, Price] = field(default_factory=lambda: BUILT_IN)

    @classmethod
    def parse(cls, text: str | None) -> Prices:
        """The built-in table with GEMBOT_PRICES' entries over it; InvalidInput saying what is
        wrong with the JSON (blank: the built-in table alone)."""
        if text is None or not text.strip():
            return cls()
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"GEMBOT_PRICES is not JSON ({exc.msg} at character {exc.pos + 1})") from None
        if not isinstance(data, dict):
            raise InvalidInput(
                'GEMBOT_PRICES must be a JSON object: {"model": {"input": 0.3, "output": 2.5}}'
            )
        table = dict(BUILT_IN)
        for model, entry in data.items():
            name = str(model).removeprefix("models/")
            if not _MODEL_NAME.fullmatch(name):
                raise InvalidInput(f"GEMBOT_PRICES: {str(model)[:60]!r} is not a model name")
            table[name] = _price(name, entry)
        return cls(MappingProxyType(table))

    def price(self, model: str) -> Price | None:
        """The price of `model`: its own entry, else the longest entry it extends by a version
        suffix (see the module doc); None when there is none."""
        name = model.removeprefix("models/")
        if name in self.table:
            return self.table[name]
        matches = [
            known
            for known in self.table
            if name.startswith(known) and _VERSION_SUFFIX.fullmatch(name[len(known) :])
        ]
        return self.table[max(matches, key=len)] if matches else None

    def cost(self, model: str, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float | None:
        """USD for a request's tokens on `model` (output including thinking), half through the
        Batch API; None when the model's price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        usd = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
        return usd * BATCH_DISCOUNT if batch else usd


def _price(model: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise InvalidInput(f'GEMBOT_PRICES: {model} needs {{"input": USD, "output": USD}} per million tokens')
    unknown = sorted(set(entry) - {"input", "output"})
    if unknown:
        raise InvalidInput(f"GEMBOT_PRICES: {model} has {unknown[0]!r}; only input and output are prices")
    values: dict[str, float] = {}
    for key in ("input", "output"):
        if key not in entry:
            raise InvalidInput(f"GEMBOT_PRICES: {model} has no {key!r} price")
        value = entry[key]
        try:
            number = (
                float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
            )
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise InvalidInput(
                f"GEMBOT_PRICES: {model}'s {key} price must be a number of USD per million tokens"
            )
        if number < 0:
            raise InvalidInput(f"GEMBOT_PRICES: {model}'s {key} price is negative")
        values[key] = number
    return Price(input=values["input"], output=values["output"])
