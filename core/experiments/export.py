"""Every result of an experiment as a file: CSV (safe to open in a spreadsheet) or JSONL.

One row per model and input row, in the order given: the prompt sent, the answer, its outcome
and reason, the score and the judge's reason, tokens, latency, whether it came from the cache or
the Batch API, and its cost in USD at the model's price (batch rows at half; empty when the
model's price is unknown), the judge's tokens; then, when asked, columns of the input table
(`input.COLUMN`: the expected answer, say). Rows are numbered from 1, as the input file's data
rows are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.csv_cells import Cell, csv_text
from core.experiments.pricing import Prices
from core.store.experiments import ResultRecord

COLUMNS = (
    "model",
    "row",
    "prompt",
    "answer",
    "outcome",
    "reason",
    "score",
    "judge_reason",
    "input_tokens",
    "output_tokens",
    "thinking_tokens",
    "latency_ms",
    "cached",
    "batch",
    "cost",
    "judge_input_tokens",
    "judge_output_tokens",
)
# Characters that JSON may leave raw but that some line readers (Python's str.splitlines, among
# others) take for a line break: escaped, so that one JSONL line is always one result.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def export_rows(
    results: Iterable[ResultRecord],
    *,
    prices: Prices,
    cases: Sequence[Mapping[str, str]] = (),
    columns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The results as plain values, one dict of `COLUMNS` each, then `input.COLUMN` for each of
    `columns`: the value of the result's row in `cases` (the input table; None past its end)."""
    return [
        {
            "model": r.model,
            "row": r.row_index + 1,
            "prompt": r.prompt,
            "answer": r.answer,
            "outcome": r.outcome,
            "reason": r.reason,
            "score": r.score,
            "judge_reason": r.judge_reason,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "thinking_tokens": r.thinking_tokens,
            "latency_ms": round(r.latency_ms, 1),
            "cached": r.cached,
            "batch": r.batch,
            "cost": prices.cost(r.model, r.input_tokens, r.output_tokens, batch=r.batch),
            "judge_input_tokens": r.judge_input_tokens,
            "judge_output_tokens": r.judge_output_tokens,
            **{
                f"input.{column}": cases[r.row_index].get(column) if 0 <= r.row_index < len(cases) else None
                for column in columns
            },
        }
        for r in results
    ]


def export_csv(
    results: Iterable[ResultRecord],
    *,
    prices: Prices,
    cases: Sequence[Mapping[str, str]] = (),
    columns: Sequence[str] = (),
) -> str:
    """The results as CSV with a header; every text cell passes through `core.csv_cells` (a prompt
    or answer starting with `=` reads back whole through `original_cell`, and never runs as a
    formula). Costs are written with ten decimals: a request costs millionths of a dollar. With
    `cases` and `columns`, the input table's columns follow (as `export_rows` adds them)."""
    names = [*COLUMNS, *(f"input.{column}" for column in columns)]
    table: list[list[Cell]] = [list(names)]
    for row in export_rows(results, prices=prices, cases=cases, columns=columns):
        cells: list[Cell] = []
        for name in names:
            value = row[name]
            if isinstance(value, bool):
                cells.append("true" if value else "false")
            elif name == "cost" and value is not None:
                cells.append(f"{value:.10f}")
            elif name == "latency_ms":
                cells.append(f"{value:.1f}")
            else:
                cells.append(value)
        table.append(cells)
    return csv_text(table)


def export_jsonl(
    results: Iterable[ResultRecord],
    *,
    prices: Prices,
    cases: Sequence[Mapping[str, str]] = (),
    columns: Sequence[str] = (),
) -> str:
    """The results as JSON Lines, one object a line with the keys of `COLUMNS` (and the input
    columns, as `export_rows` adds them), text unescaped.

    No formula escaping: a JSONL file is read by JSON parsers, which give strings as strings
    (a spreadsheet importing it does too), and a prefixed `'` would change the text itself.
    """
    lines = []
    for row in export_rows(results, prices=prices, cases=cases, columns=columns):
        line = json.dumps(row, ensure_ascii=False)
        for raw, escaped in _LINE_BREAKS.items():
            line = line.replace(raw, escaped)
        lines.append(line + "\n")
    return "".join(lines)
