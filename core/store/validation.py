"""Checks on what callers hand to `Store`, so bad input fails with a sentence, not a driver error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInput
from core.store.records import ExampleInput, text_hash
from core.store.schema import AUTHOR_LENGTH, LABEL_NAME_LENGTH, SET_NAME_LENGTH, TEAM_ID_LENGTH


@dataclass(frozen=True)
class CleanExample:
    label: str
    text: str
    hash: str
    author: str | None
    source_url: str | None


def clean(value: str, *, what: str, limit: int | None = None) -> str:
    """`value` stripped; InvalidInput when that leaves nothing or more than `limit` characters."""
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"the {what} is empty")
    if limit is not None and len(stripped) > limit:
        raise InvalidInput(f"the {what} is longer than {limit} characters")
    # PostgreSQL refuses NUL in text; SQLite would keep it and the two would disagree.
    if "\x00" in stripped:
        raise InvalidInput(f"the {what} contains a NUL character")
    return stripped


def clean_optional(value: str | None, *, what: str, limit: int | None = None) -> str | None:
    if value is None or not value.strip():
        return None
    return clean(value, what=what, limit=limit)


def team_id(value: str) -> str:
    return clean(value, what="workspace id", limit=TEAM_ID_LENGTH)


def set_name(value: str) -> str:
    return clean(value, what="label set name", limit=SET_NAME_LENGTH)


def label_name(value: str) -> str:
    return clean(value, what="label name", limit=LABEL_NAME_LENGTH)


def examples(items: Sequence[ExampleInput]) -> list[CleanExample]:
    """Every item checked before any is written; the error names the first bad row (from 1)."""
    cleaned: list[CleanExample] = []
    for row, item in enumerate(items, start=1):
        # Worded like core.labels_io's checks of an imported file, which name rows the same way.
        if not item.label.strip():
            raise InvalidInput(f"row {row} has no label")
        if not item.text.strip():
            raise InvalidInput(f"row {row} has no text")
        try:
            label = label_name(item.label)
            text = clean(item.text, what="text")
            cleaned.append(
                CleanExample(
                    label=label,
                    text=text,
                    hash=text_hash(text),
                    author=clean_optional(item.author, what="author", limit=AUTHOR_LENGTH),
                    source_url=clean_optional(item.source_url, what="source URL"),
                )
            )
        except InvalidInput as exc:
            raise InvalidInput(f"row {row}: {exc}") from None
    return cleaned


def whole(value: int, *, what: str, minimum: int = 0) -> int:
    """`value` as an int; InvalidInput when it is below `minimum` (or not a whole number)."""
    number = int(value)
    if number != value or number < minimum:
        raise InvalidInput(f"the {what} must be a whole number of at least {minimum}, not {value!r}")
    return number


def duration(value: float, *, what: str) -> float:
    """`value` as a float number of seconds; InvalidInput when it is negative, infinite or NaN."""
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"the {what} must be a finite, non-negative number of seconds, not {value!r}")
    return seconds
