"""Reading and writing label sets as CSV (`text,label`) or as the JSON that export writes.

Pure functions over strings, shared by the CLI and Slack: both import and export through here, so
a set exported from one comes back identically through the other. CSV cells are written safe to
open in a spreadsheet and read back to their original text (`core.csv_cells`); JSON is no
spreadsheet format, and its values are written and read as they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from core.csv_cells import csv_text, original_cell
from core.errors import InvalidInput, TextsTooLong
from core.store.records import ExampleInput

EXPORT_FORMAT = "gembot.labels/1"
CSV_COLUMNS = ("text", "label", "author", "source_url")


#: One example as it travels through a file: what the store takes to add it.
LabelRow = ExampleInput


def parse_labels(content: str, *, filename: str = "", max_chars: int | None = None) -> list[LabelRow]:
    """Parse CSV or export JSON (told apart by the content, not the name) into rows.

    Raises InvalidInput with a one-line reason when the content is not a label file; empty text or
    label cells are reported with the line their row starts on (an export's example number) so
    the user can fix the file. With `max_chars`, a text longer than that refuses the whole file:
    TextsTooLong numbers every such row, so that none enters a label set unnoticed and the file can
    be fixed in one go.
    """
    stripped = content.lstrip("\ufeff").lstrip()
    if not stripped:
        raise InvalidInput(f"{filename or 'the file'} is empty")
    if stripped[0] in "{[":
        numbered = _parse_json(stripped, filename)
        unit = "example"
    else:
        numbered = _parse_csv(content.lstrip("\ufeff"), filename)
        unit = "row"
    if max_chars is not None:
        too_long = [where for where, row in numbered if len(row.text) > max_chars]
        if too_long:
            name = filename or ("the file" if unit == "example" else "the CSV file")
            raise TextsTooLong(name, too_long, limit=max_chars, unit=unit)
    return [row for _, row in numbered]


def _parse_json(content: str, filename: str) -> list[tuple[int, LabelRow]]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{filename or 'the file'} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise InvalidInput(f"{filename or 'the file'} is not a Gembot label export (no 'examples' list)")
    rows = []
    for n, item in enumerate(data["examples"], start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"example {n} in {filename or 'the file'} is not an object")
        rows.append(
            (n, _row(item.get("label"), item.get("text"), item.get("author"), item.get("source_url"), n))
        )
    return rows


def _parse_csv(content: str, filename: str) -> list[tuple[int, LabelRow]]:
    name = filename or "the CSV file"
    reader = csv.reader(io.StringIO(content, newline=""))
    # Each row with the line it starts on (a quoted cell may span lines); blank lines skipped.
    numbered: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if cells:
                numbered.append((start, [original_cell(c) for c in cells]))
            start = reader.line_num + 1
    except csv.Error as exc:
        if not numbered:
            raise InvalidInput(f"{filename or 'the file'} is not a readable CSV file: {exc}") from None
        raise InvalidInput(f"{name} is not readable at line {reader.line_num}: {exc}") from None
    header = [h.strip().lower() for h in numbered[0][1]] if numbered else []
    missing = [c for c in ("text", "label") if c not in header]
    if missing:
        raise InvalidInput(
            f"{name} needs 'text' and 'label' columns; it has "
            f"{', '.join(repr(h) for h in header) or 'no header'}"
        )
    rows = []
    for line, cells in numbered[1:]:
        record = dict(zip(header, cells, strict=False))
        found = _row(
            record.get("label"), record.get("text"), record.get("author"), record.get("source_url"), line
        )
        rows.append((line, found))
    return rows


def _row(label: object, text: object, author: object, source: object, where: int) -> LabelRow:
    if not isinstance(label, str) or not label.strip():
        raise InvalidInput(f"row {where} has no label")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"row {where} has no text")
    return LabelRow(
        label=label.strip(),
        text=text.strip(),
        author=author.strip() or None if isinstance(author, str) else None,
        source_url=source.strip() or None if isinstance(source, str) else None,
    )


def rows_to_csv(rows: Iterable[LabelRow], *, raw: bool = False) -> str:
    """CSV with a header; `author` and `source_url` are empty where unknown.

    Cells are safe to open in a spreadsheet (`core.csv_cells.safe_cell`), and `parse_labels` reads
    them back to the exact text; `raw` writes them exactly as stored instead (for other tools).
    """
    body = ((row.text, row.label, row.author, row.source_url) for row in rows)
    return csv_text([CSV_COLUMNS, *body], raw=raw)


def rows_to_json(rows: Sequence[LabelRow], *, set_name: str) -> str:
    """The export JSON: stable key order and indentation so exports diff cleanly."""
    document = {
        "format": EXPORT_FORMAT,
        "set": set_name,
        "examples": [
            {"label": r.label, "text": r.text, "author": r.author, "source_url": r.source_url} for r in rows
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
