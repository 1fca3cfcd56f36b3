"""Cells of the CSV files Gembot writes, made safe to open in a spreadsheet (OWASP's CSV injection).

A spreadsheet reads a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or a carriage
return) as a formula: a label named `=HYPERLINK("http://…","click")` in an export would become a
live link in whoever opens it. OWASP's advice is to prefix such a cell with a single quote, which
spreadsheets show as text. A cell that already starts with quotes before one of those characters
gets one more too, so that reading a file back (`original_cell`) removes exactly one quote and
gives the original text: export, import, export writes the same bytes twice.

Pure functions over strings; every CSV Gembot writes goes through `csv_text`, and every CSV it
reads back (label imports, tables to classify) through `original_cell`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

#: What a cell is: text (escaped), a number Gembot computed (written as it is), or None (empty).
Cell = str | int | float | None

#: The characters a spreadsheet may take for the start of a formula.
DANGEROUS = "=+-@\t\r"
_NEEDS_QUOTE = re.compile(f"'*[{re.escape(DANGEROUS)}]")
_QUOTED = re.compile(f"'+[{re.escape(DANGEROUS)}]")


def safe_cell(value: str) -> str:
    """`value` with a `'` in front when it starts (after any quotes) with a formula character."""
    return "'" + value if _NEEDS_QUOTE.match(value) else value


def original_cell(value: str) -> str:
    """The text `safe_cell` was given: one leading `'` less when quotes precede a formula character."""
    return value[1:] if _QUOTED.match(value) else value


def csv_text(rows: Iterable[Sequence[Cell]], *, raw: bool = False) -> str:
    """Rows as CSV text, `\\n` after each; text cells pass through `safe_cell` unless `raw`.

    Numbers are Gembot's own figures (ids, scores), not text anyone typed, so they are written as
    numbers: a negative score stays a number in the spreadsheet. Floats get four decimals. Every
    text, whatever its line breaks, reads back whole (`csv.reader` on a `newline=""` stream).
    """
    out = io.StringIO(newline="")
    minimal = csv.writer(out, lineterminator="\n")
    # The csv module quotes a cell holding the line terminator's characters (\n) but not a lone
    # \r, which a reader takes for the end of the row: a row with one has all its cells quoted.
    everything = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [_cell(value, raw=raw) for value in row]
        (everything if any("\r" in cell for cell in cells) else minimal).writerow(cells)
    return out.getvalue()


def _cell(value: Cell, *, raw: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if raw else safe_cell(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
