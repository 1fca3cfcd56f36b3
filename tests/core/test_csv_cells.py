"""`core.csv_cells` and the CSV files written with it: every cell safe to open in a spreadsheet
(OWASP's CSV injection), and every file read back to the exact text it was written from."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from core.classify import Prediction
from core.csv_cells import DANGEROUS, csv_text, original_cell, safe_cell
from core.csv_tables import annotate_table, parse_text_table
from core.labels_io import LabelRow, parse_labels, rows_to_csv, rows_to_json

HYPERLINK = '=HYPERLINK("http://evil.invalid/?x","click")'

# Any text, and above all the texts at the edge: quotes before a formula character, tabs, CRs.
edgy = st.builds(
    lambda quotes, first, rest: quotes + first + rest,
    st.text(alphabet="'", max_size=4),
    st.sampled_from(["", *DANGEROUS, " ", "a", "\n"]),
    st.text(max_size=30),
)
cells = st.one_of(st.text(), edgy)
# What the store keeps: stripped, non-empty.
stored = cells.map(str.strip).filter(bool)


def cells_of(content: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content, newline="")))


# -- the two functions --------------------------------------------------------------------------


@given(cells)
def test_a_safe_cell_reads_back_to_its_text(value: str) -> None:
    assert original_cell(safe_cell(value)) == value


@given(cells)
def test_a_safe_cell_never_starts_a_formula(value: str) -> None:
    safe = safe_cell(value)
    assert not safe or safe[0] not in DANGEROUS
    # Nothing changes but one quote in front.
    assert safe == value or safe == "'" + value


def test_what_is_escaped_and_what_is_not() -> None:
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'=x", "''@x"):
        assert safe_cell(dangerous) == "'" + dangerous
    for harmless in ("", "a=b", "plain", " =x", "'", "'quoted", "'' x", "1.5"):
        assert safe_cell(harmless) == harmless
        assert original_cell(harmless) == harmless
    assert original_cell("'=x") == "=x" and original_cell("'''-x") == "''-x"


def test_text_is_escaped_numbers_are_not() -> None:
    written = csv_text([("id", "text", "score"), (7, "-3 degrees", -0.12345), (8, None, 1.0)])
    assert cells_of(written) == [
        ["id", "text", "score"],
        ["7", "'-3 degrees", "-0.1235"],
        ["8", "", "1.0000"],
    ]
    assert cells_of(csv_text([("-3 degrees",)], raw=True)) == [["-3 degrees"]]
    # A lone carriage return inside a text does not end its row.
    assert cells_of(csv_text([("one\rtwo", 1), ("three", 2)])) == [["one\rtwo", "1"], ["three", "2"]]


# -- label sets ---------------------------------------------------------------------------------


def test_an_export_neutralises_formulas_and_imports_back_exactly() -> None:
    rows = [
        LabelRow("fruit", HYPERLINK, author="U0HUMAN", source_url="https://x.invalid/p1"),
        LabelRow("@risk", "'=already quoted", author="-someone"),
        LabelRow("plain", "nothing to see"),
    ]
    exported = rows_to_csv(rows)
    assert cells_of(exported) == [
        ["text", "label", "author", "source_url"],
        ["'" + HYPERLINK, "fruit", "U0HUMAN", "https://x.invalid/p1"],
        ["''=already quoted", "'@risk", "'-someone", ""],
        ["nothing to see", "plain", "", ""],
    ]
    assert parse_labels(exported) == rows
    assert rows_to_csv(parse_labels(exported)) == exported
    # Raw: exactly as stored, for tools that are no spreadsheet.
    assert cells_of(rows_to_csv(rows, raw=True))[1][0] == HYPERLINK


def test_json_keeps_its_values_as_they_are() -> None:
    rows = [LabelRow("@risk", HYPERLINK), LabelRow("b", "'=x")]
    document = rows_to_json(rows, set_name="s")
    assert [(e["label"], e["text"]) for e in json.loads(document)["examples"]] == [
        ("@risk", HYPERLINK),
        ("b", "'=x"),
    ]
    assert parse_labels(document) == rows


@given(st.lists(st.tuples(stored, stored, st.one_of(st.none(), stored)), min_size=1, max_size=8))
def test_export_import_export_is_identical_for_any_text(found: list[tuple[str, str, str | None]]) -> None:
    rows = [LabelRow(label, text, author=author) for text, label, author in found]
    exported = rows_to_csv(rows)
    assert parse_labels(exported) == rows
    assert rows_to_csv(parse_labels(exported)) == exported
    assert not any(cell and cell[0] in DANGEROUS for row in cells_of(exported) for cell in row)


# -- tables to classify -------------------------------------------------------------------------


def prediction(label: str | None, best: str, scores: dict[str, float]) -> Prediction:
    return Prediction(
        label=label,
        best_label=best,
        confidence=0.75,
        scores=scores,
        probabilities={best: 0.75},
        method="centroid",
        abstained=label is None,
        reason=None,
    )


def test_a_classified_table_neutralises_every_text_cell() -> None:
    table = parse_text_table(f"-id,text,@note\n1,{csv_text([[HYPERLINK]]).strip()},+1 555\n2,fine,\n")
    labels = ["=cmd", "ok"]
    written = annotate_table(
        table,
        [prediction("=cmd", "=cmd", {"=cmd": 0.5, "ok": -0.25}), prediction(None, "ok", {"ok": 0.1})],
        labels,
    )
    header, first, second = cells_of(written)
    assert header == [
        "'-id",
        "text",
        "'@note",
        "label",
        "best_label",
        "confidence",
        "score:=cmd",
        "score:ok",
    ]
    assert first == ["1", "'" + HYPERLINK, "'+1 555", "'=cmd", "'=cmd", "0.7500", "0.5000", "-0.2500"]
    assert second == ["2", "fine", "", "", "ok", "0.7500", "0.0000", "0.1000"]
    # A result file classified again reads the original texts and columns back.
    again = parse_text_table(written)
    assert again.texts == [HYPERLINK, "fine"]
    assert again.header[:3] == ["-id", "text", "@note"] and again.rows[0][2] == "+1 555"


@given(st.lists(st.tuples(cells, stored), min_size=1, max_size=6))
def test_a_table_reads_back_to_its_cells(found: list[tuple[str, str]]) -> None:
    rows = [[other, text] for other, text in found]
    table = parse_text_table(csv_text([["other", "text"], *rows]))
    # Rows of nothing but blanks are skipped on reading; every other row comes back exactly.
    assert table.rows == [r for r in rows if any(c.strip() for c in r)]
