"""Prices: the built-in table, GEMBOT_PRICES over it, model names matched by version suffix only."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.experiments.pricing import BUILT_IN, Price, Prices


def test_cost_is_tokens_at_the_price_per_million_and_half_in_a_batch() -> None:
    prices = Prices.parse('{"house-model": {"input": 2, "output": 8}}')
    # 1,500 × $2/M + 250 × $8/M = $0.003 + $0.002
    assert prices.cost("house-model", 1_500, 250) == pytest.approx(0.005)
    assert prices.cost("house-model", 1_500, 250, batch=True) == pytest.approx(0.0025)
    assert prices.cost("house-model", 0, 0) == 0.0


def test_an_unknown_model_has_no_cost() -> None:
    assert Prices().cost("some-other-model", 1_000, 1_000) is None
    assert Prices().price("claude-3") is None


def test_the_built_in_table_is_sane() -> None:
    for model, price in BUILT_IN.items():
        assert 0 < price.input <= price.output, model
    assert BUILT_IN["gemini-2.5-flash-lite"].output < BUILT_IN["gemini-2.5-flash"].output
    assert BUILT_IN["gemini-2.5-flash"].output < BUILT_IN["gemini-2.5-pro"].output
    assert {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"} <= set(
        BUILT_IN
    )


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.5-flash-001", "gemini-2.5-flash"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
        ("gemini-2.5-flash-image", None),  # another model, another price
        ("gemini-2.5-flash-preview-tts", None),
        ("gemini-2.5-flash2", None),
        ("gemini-2.5", None),
    ],
)
def test_model_names_match_their_own_entry_or_a_version_of_it(model: str, priced_as: str | None) -> None:
    assert Prices().price(model) == (BUILT_IN[priced_as] if priced_as else None)


def test_a_lite_model_is_never_priced_as_its_bigger_sibling() -> None:
    only_flash = Prices(table={"gemini-2.5-flash": Price(0.3, 2.5)})
    assert only_flash.price("gemini-2.5-flash-lite") is None
    assert only_flash.price("gemini-2.5-flash-lite-001") is None
    assert only_flash.price("gemini-2.5-flash-001") == Price(0.3, 2.5)


def test_the_longest_matching_entry_wins() -> None:
    prices = Prices(table={"m": Price(1, 1), "m-2": Price(2, 2)})
    # "-2-001" is a version suffix of "m" too; "m-2" is the closer entry.
    assert prices.price("m-2-001") == Price(2, 2)
    assert prices.price("m-3") == Price(1, 1)


def test_gembot_prices_replace_and_add_entries() -> None:
    prices = Prices.parse(
        '{"gemini-2.5-flash": {"input": 0.5, "output": 4}, "models/tuned-x": {"input": 1, "output": 1.5}}'
    )
    assert prices.price("gemini-2.5-flash") == Price(0.5, 4.0)
    assert prices.price("gemini-2.5-flash-001") == Price(0.5, 4.0)
    assert prices.price("tuned-x") == Price(1.0, 1.5)
    assert prices.price("gemini-2.5-pro") == BUILT_IN["gemini-2.5-pro"]  # the rest stays
    assert Prices.parse("  ").table == BUILT_IN
    assert Prices.parse(None).table == BUILT_IN
    assert Prices.parse('{"free-model": {"input": 0, "output": 0}}').cost("free-model", 10, 10) == 0.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "is not JSON"),
        ('[{"input": 1, "output": 2}]', "must be a JSON object"),
        ('{"m": [1, 2]}', 'needs {"input": USD, "output": USD}'),
        ('{"m": {"input": 1}}', "has no 'output' price"),
        ('{"m": {"output": 1}}', "has no 'input' price"),
        ('{"m": {"input": -1, "output": 2}}', "m's input price is negative"),
        ('{"m": {"input": "0.3", "output": 2}}', "m's input price must be a number"),
        ('{"m": {"input": true, "output": 2}}', "m's input price must be a number"),
        ('{"m": {"input": 1, "output": NaN}}', "m's output price must be a number"),
        ('{"m": {"input": 1, "output": Infinity}}', "m's output price must be a number"),
        ('{"m": {"input": 1, "output": 1' + "0" * 400 + "}}", "m's output price must be a number"),
        ('{"m": {"input": 1, "output": 2, "cached": 0.1}}', "has 'cached'"),
        ('{"bad name!": {"input": 1, "output": 2}}', "is not a model name"),
    ],
)
def test_bad_gembot_prices_say_what_is_wrong_in_one_line(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Prices.parse(text)
    message = str(caught.value)
    assert message.startswith("GEMBOT_PRICES")
    assert words in message
    assert "\n" not in message
