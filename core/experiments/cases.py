"""The cases an experiment runs over (a CSV or JSONL table) and the template that turns each into a prompt.

A template names columns in braces, `Classify the tone of: {text}`; `{{` and `}}` are literal
braces. It is filled by plain substitution, never by `str.format`, so a template cannot reach
attributes or indexes (`{text.__class__}`) and a cell containing braces stays as it is. Every
placeholder must be a column of the table, checked before anything is sent.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from core.csv_cells import original_cell
from core.errors import InvalidInput

# `{name}` where name is a column name without braces; `{{`/`}}` are escapes.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True)
class Template:
    """A prompt template with `{column}` placeholders."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise InvalidInput("the prompt template is empty")
        for match in _TOKEN.finditer(self.text):
            token = match.group(0)
            if token in ("{", "}"):
                raise InvalidInput(
                    f"the template has a lone {token!r} at character {match.start() + 1}; "
                    "write {{ or }} for a literal brace"
                )
            if match.group(1) is not None and not match.group(1).strip():
                raise InvalidInput(
                    "the template has an empty placeholder {}; name a column inside the braces"
                )
        if not self.placeholders:
            raise InvalidInput("the template has no {column} placeholder, so every prompt would be the same")

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The column names the template uses, in order of first use."""
        names: list[str] = []
        for match in _TOKEN.finditer(self.text):
            name = match.group(1)
            if name is not None and name.strip() not in names:
                names.append(name.strip())
        return tuple(names)

    def check(self, columns: tuple[str, ...], *, source: str = "the input") -> None:
        """InvalidInput naming every placeholder that is not a column of `columns`."""
        missing = [name for name in self.placeholders if name not in columns]
        if missing:
            names = ", ".join("{" + name + "}" for name in missing)
            raise InvalidInput(
                f"the template uses {names}, but {source} has no such column "
                f"(its columns: {', '.join(columns) or 'none'})"
            )

    def render(self, row: dict[str, str]) -> str:
        """The prompt for one row (every placeholder must be among its keys)."""

        def fill(match: re.Match[str]) -> str:
            token = match.group(0)
            if token == "{{":
                return "{"
            if token == "}}":
                return "}"
            return row[match.group(1).strip()]

        return _TOKEN.sub(fill, self.text)


@dataclass(frozen=True)
class Cases:
    """The input table: its columns and its rows (every value a string)."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def to_json(self) -> dict[str, object]:
        return {"columns": list(self.columns), "rows": [dict(row) for row in self.rows]}

    @classmethod
    def of(cls, data: dict[str, object]) -> Cases:
        columns = tuple(str(c) for c in data.get("columns") or ())  # type: ignore[attr-defined]
        rows = tuple({str(k): str(v) for k, v in dict(r).items()} for r in data.get("rows") or ())  # type: ignore[attr-defined]
        return cls(columns, rows)


def read_cases(content: bytes | str, *, filename: str, max_rows: int, max_chars: int) -> Cases:
    """The rows of a CSV file (with a header) or a JSONL file (one object per line).

    JSONL is chosen by a `.jsonl`/`.ndjson` name; anything else is read as CSV. Values are kept
    as text (a JSON number or boolean becomes its JSON spelling). Refused whole, with the row named,
    when it is not UTF-8, not readable, empty, longer than `max_rows`, or has a cell longer than
    `max_chars`.
    """
    name = filename or "the input file"
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{name} is not UTF-8 text") from None
    if "\x00" in content:
        raise InvalidInput(f"{name} contains NUL bytes, so it is not a text file")
    content = content.lstrip("\ufeff")
    if filename.lower().endswith((".jsonl", ".ndjson")):
        cases = _read_jsonl(content, name)
    else:
        cases = _read_csv(content, name)
    if not cases.rows:
        raise InvalidInput(f"{name} has no rows")
    if len(cases.rows) > max_rows:
        raise InvalidInput(
            f"{name} has {len(cases.rows):,} rows; at most {max_rows:,} are allowed (GEMBOT_MAX_CSV_ROWS)"
        )
    for number, row in enumerate(cases.rows, 1):
        for column, value in row.items():
            if len(value) > max_chars:
                raise InvalidInput(
                    f"{name} row {number}: {column!r} has {len(value):,} characters; "
                    f"at most {max_chars:,} are allowed (GEMBOT_MAX_TEXT_CHARS)"
                )
    return cases


def _read_csv(content: str, name: str) -> Cases:
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        table = [[original_cell(cell) for cell in row] for row in reader]
    except csv.Error as exc:
        raise InvalidInput(f"{name} is not a readable CSV file: {exc}") from None
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise InvalidInput(f"{name} is empty")
    header = [cell.strip() for cell in table[0]]
    if any(not column for column in header):
        raise InvalidInput(f"{name}: every column needs a name in the header row")
    if len(set(header)) != len(header):
        raise InvalidInput(f"{name}: a column name appears twice in the header row")
    rows = []
    for number, row in enumerate(table[1:], 1):
        if len(row) > len(header):
            raise InvalidInput(f"{name} row {number} has {len(row)} cells but the header has {len(header)}")
        rows.append({column: row[i] if i < len(row) else "" for i, column in enumerate(header)})
    return Cases(tuple(header), tuple(rows))


def _read_jsonl(content: str, name: str) -> Cases:
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InvalidInput(f"{name} line {number} is not JSON") from None
        if not isinstance(item, dict):
            raise InvalidInput(f"{name} line {number} is not a JSON object")
        row = {}
        for key, value in item.items():
            row[str(key)] = value if isinstance(value, str) else "" if value is None else json.dumps(value)
            if str(key) not in columns:
                columns.append(str(key))
        rows.append(row)
    # A key missing from a line reads as empty, as a short CSV row does.
    return Cases(tuple(columns), tuple({c: row.get(c, "") for c in columns} for row in rows))
