"""Exports: every result as CSV that a spreadsheet cannot run, and as JSONL that reads back whole."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from core.csv_cells import original_cell
from core.experiments.export import COLUMNS, export_csv, export_jsonl
from core.experiments.pricing import Prices
from tests.support.experiment_support import result

PRICES = Prices.parse('{"m-a": {"input": 2, "output": 8}}')

BASE = result(
    model="m-a",
    prompt="Classify the tone of: I love it",
    answer="Positive",
    score=1.0,
    input_tokens=1_500,
    output_tokens=250,
    thinking_tokens=100,
    latency_ms=812.34,
)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_has_every_column_and_a_row_per_result() -> None:
    results = [
        BASE,
        replace(
            BASE,
            row_index=1,
            batch=True,
            cached=True,
            score=None,
            outcome="refused",
            answer="",
            reason="SAFETY",
        ),
        replace(BASE, model="unpriced", row_index=2),
    ]
    text = export_csv(results, prices=PRICES)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    first, second, third = read_csv(text)
    assert first["model"] == "m-a" and first["row"] == "1"  # rows counted from 1
    assert (first["outcome"], first["reason"], first["score"]) == ("answered", "STOP", "1.0000")
    assert (first["input_tokens"], first["output_tokens"], first["thinking_tokens"]) == ("1500", "250", "100")
    assert (first["latency_ms"], first["cached"], first["batch"]) == ("812.3", "false", "false")
    # 1,500 × $2/M + 250 × $8/M = $0.005; the batch row costs half.
    assert float(first["cost"]) == 0.005 and float(second["cost"]) == 0.0025
    assert (second["row"], second["outcome"], second["score"], second["batch"]) == (
        "2",
        "refused",
        "",
        "true",
    )
    assert third["cost"] == ""  # no price, no cost


def test_formulas_in_prompts_and_answers_are_made_harmless() -> None:
    evil = replace(
        BASE, prompt='=HYPERLINK("http://x","click")', answer="+1 cmd|' /C calc'!A0", judge_reason="@SUM(1)"
    )
    (row,) = read_csv(export_csv([evil], prices=PRICES))
    assert (
        row["prompt"].startswith("'=")
        and row["answer"].startswith("'+")
        and row["judge_reason"].startswith("'@")
    )


texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)


@given(prompt=texts, answer=texts, reason=texts, judge_reason=texts)
def test_csv_reads_back_to_the_original_texts(
    prompt: str, answer: str, reason: str, judge_reason: str
) -> None:
    record = replace(BASE, prompt=prompt, answer=answer, reason=reason, judge_reason=judge_reason)
    (row,) = read_csv(export_csv([record], prices=PRICES))
    for name, text in (
        ("prompt", prompt),
        ("answer", answer),
        ("reason", reason),
        ("judge_reason", judge_reason),
    ):
        assert original_cell(row[name]) == text


def test_jsonl_is_one_object_a_line_with_the_texts_as_written() -> None:
    results = [
        replace(BASE, answer="=1+1 café\nsecond line\u2028third\x85fourth\u2029end"),
        replace(BASE, row_index=1, outcome="error", answer="", reason="quota", score=None, cached=True),
        replace(BASE, model="unpriced", row_index=2),
    ]
    text = export_jsonl(results, prices=PRICES)
    assert "café" in text  # not \u-escaped
    lines = text.splitlines()  # splits on \u2028, \x85 and \u2029 too: they must be escaped
    assert len(lines) == 3 and text.endswith("\n")
    first, second, third = (json.loads(line) for line in lines)
    assert list(first) == list(COLUMNS)
    assert first["answer"] == results[0].answer  # no formula quote: JSON is not a spreadsheet
    assert (first["row"], first["score"], first["cached"], first["cost"]) == (1, 1.0, False, 0.005)
    assert (second["outcome"], second["score"], second["cached"]) == ("error", None, True)
    assert third["cost"] is None


def test_empty_exports() -> None:
    assert export_jsonl([], prices=PRICES) == ""
    assert export_csv([], prices=PRICES) == ",".join(COLUMNS) + "\n"


def test_input_columns_follow_when_asked() -> None:
    cases = [{"text": "I love it", "label": "=positive"}, {"text": "meh", "label": "neutral"}]
    results = [BASE, replace(BASE, row_index=1), replace(BASE, row_index=7)]
    text = export_csv(results, prices=PRICES, cases=cases, columns=["label"])
    assert text.splitlines()[0] == ",".join([*COLUMNS, "input.label"])
    first, second, past_the_end = read_csv(text)
    assert first["input.label"] == "'=positive" and original_cell(first["input.label"]) == "=positive"
    assert second["input.label"] == "neutral" and past_the_end["input.label"] == ""
    lines = export_jsonl(results, prices=PRICES, cases=cases, columns=["text", "label"]).splitlines()
    assert json.loads(lines[0])["input.text"] == "I love it" and json.loads(lines[2])["input.label"] is None
