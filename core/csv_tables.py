"""Tables of texts in and out: the CSV a bulk classification reads, and the one it writes back.

Shared by the CLI (`gembot classify --input`) and Slack (a CSV sent to the bot by DM), so both
answer with the same columns. Every cell written is safe to open in a spreadsheet, and every cell
read is taken back to its original text (`core.csv_cells`), so a result file can be classified
again and carries the same texts through.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.csv_cells import csv_text, original_cell
from core.errors import InvalidInput, TextsTooLong

if TYPE_CHECKING:
    from core.classify import Prediction


@dataclass(frozen=True)
class TextTable:
    """A CSV with a `text` column; every other column is carried through untouched."""

    header: list[str]
    rows: list[list[str]]
    text_column: int

    @property
    def texts(self) -> list[str]:
        return [row[self.text_column] for row in self.rows]


def parse_text_table(content: str, *, filename: str = "", max_chars: int | None = None) -> TextTable:
    """Read a CSV that has a `text` column (any case); refuse one that has none or is unreadable.

    Rows are numbered by the line of the file they start on. With `max_chars`, a text longer than
    that refuses the whole file: TextsTooLong numbers every such row, before any is classified.
    """
    name = filename or "the CSV file"
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff"), newline=""))
    # Each row with the line it starts on (a quoted cell may span lines).
    numbered: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            numbered.append((start, [original_cell(cell) for cell in row]))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(f"{name} is not a readable CSV file: {exc}") from None
    if not numbered:
        raise InvalidInput(f"{name} is empty")
    header = numbered[0][1]
    lowered = [h.strip().lower() for h in header]
    if "text" not in lowered:
        raise InvalidInput(
            f"{name} needs a 'text' column; it has {', '.join(map(repr, header)) or 'no header'}"
        )
    column = lowered.index("text")
    body = [
        (line, r + [""] * (len(header) - len(r)))
        for line, r in numbered[1:]
        if any(cell.strip() for cell in r)
    ]
    empty = [line for line, r in body if not r[column].strip()]
    if empty:
        raise InvalidInput(f"{name} has an empty text on line {empty[0]}")
    if not body:
        raise InvalidInput(f"{name} has a header but no rows")
    if max_chars is not None:
        too_long = [line for line, r in body if len(r[column].strip()) > max_chars]
        if too_long:
            raise TextsTooLong(name, too_long, limit=max_chars)
    return TextTable(header=header, rows=[r for _, r in body], text_column=column)


def parse_text_lines(content: str, *, filename: str = "") -> list[str]:
    """Texts from a file: a CSV with a `text` column, or else one text per non-blank line."""
    first = content.lstrip("\ufeff").split("\n", 1)[0]
    if "text" in [c.strip().lower() for c in first.split(",")]:
        return parse_text_table(content, filename=filename).texts
    texts = [line.strip() for line in content.splitlines() if line.strip()]
    if not texts:
        raise InvalidInput(f"{filename or 'the input'} has no texts")
    return texts


def annotate_table(table: TextTable, predictions: Sequence[Prediction], labels: Sequence[str]) -> str:
    """The input CSV plus `label`, `confidence` and one `score:<label>` column per label.

    `label` is empty where the classifier was not sure; `best_label` always names the closest one.
    Texts (the input's cells, label names, the headers) are written safe to open in a spreadsheet;
    the figures as numbers with four decimals.
    """
    header = [*table.header, "label", "best_label", "confidence", *(f"score:{x}" for x in labels)]
    body = (
        [*row, p.label, p.best_label, float(p.confidence), *(float(p.scores.get(x, 0.0)) for x in labels)]
        for row, p in zip(table.rows, predictions, strict=True)
    )
    return csv_text([header, *body])
