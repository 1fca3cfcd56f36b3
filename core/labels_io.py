"""Reading and writing label sets as CSV (`text,label`) or as the JSON that export writes.

Pure functions over strings, shared by the CLI and Slack: both import and export through here, so
a set exported from one comes back identically through the other.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.errors import InvalidInput

EXPORT_FORMAT = "gembot.labels/1"
CSV_COLUMNS = ("text", "label", "author", "source_url")


@dataclass(frozen=True)
class LabelRow:
    """One example as it travels through a file."""

    label: str
    text: str
    author: str | None = None
    source_url: str | None = None


def parse_labels(content: str, *, filename: str = "") -> list[LabelRow]:
    """Parse CSV or export JSON (told apart by the content, not the name) into rows.

    Raises InvalidInput with a one-line reason when the content is not a label file; empty text or
    label cells are reported with their line number so the user can fix the file.
    """
    stripped = content.lstrip("\ufeff").lstrip()
    if not stripped:
        raise InvalidInput(f"{filename or 'the file'} is empty")
    if stripped[0] in "{[":
        return _parse_json(stripped, filename)
    return _parse_csv(content.lstrip("\ufeff"), filename)


def _parse_json(content: str, filename: str) -> list[LabelRow]:
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
        rows.append(_row(item.get("label"), item.get("text"), item.get("author"), item.get("source_url"), n))
    return rows


def _parse_csv(content: str, filename: str) -> list[LabelRow]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise InvalidInput(f"{filename or 'the file'} is not a readable CSV file: {exc}") from None
    missing = [c for c in ("text", "label") if c not in header]
    if missing:
        raise InvalidInput(
            f"{filename or 'the CSV file'} needs 'text' and 'label' columns; it has "
            f"{', '.join(repr(h) for h in header) or 'no header'}"
        )
    reader.fieldnames = header
    rows = []
    try:
        for record in reader:
            line = reader.line_num
            rows.append(
                _row(
                    record.get("label"),
                    record.get("text"),
                    record.get("author"),
                    record.get("source_url"),
                    line,
                )
            )
    except csv.Error as exc:
        raise InvalidInput(
            f"{filename or 'the CSV file'} is not readable at line {reader.line_num}: {exc}"
        ) from None
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


def rows_to_csv(rows: Iterable[LabelRow]) -> str:
    """CSV with a header; `author` and `source_url` are empty where unknown."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row.text, row.label, row.author or "", row.source_url or ""])
    return out.getvalue()


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
