"""The engine's own exceptions.

`core` never decides how a failure is worded for a person on a given surface; it raises one of
these with a plain sentence, and the CLI or a Slack handler chooses how to show it.
"""

from __future__ import annotations

from collections.abc import Sequence


class GembotError(Exception):
    """Base class for every error the engine raises on purpose."""


class InvalidInput(GembotError):
    """The caller gave something the engine cannot work with (empty text, a bad file...)."""


class NotFound(GembotError):
    """A label set, label or example that does not exist."""


class NotEnoughLabels(GembotError):
    """A classification or evaluation needs at least two labels that have examples."""


class DatabaseUnavailable(GembotError):
    """The database could not be reached or is not in a usable state."""


class EmbedderUnavailable(GembotError):
    """The configured embedding model cannot be loaded or called."""


class TextsTooLong(InvalidInput):
    """Rows of a file whose text is longer than the bound on texts (GEMBOT_MAX_TEXT_CHARS).

    `rows` numbers every offending row, in file order, as the file's other errors number them
    (a CSV's line, an export's example); `limit` is the bound. The message names the first few.
    """

    #: Row numbers a message spells out; the rest are counted.
    SHOWN = 5

    def __init__(self, name: str, rows: Sequence[int], *, limit: int, unit: str = "row") -> None:
        self.name = name
        self.rows = tuple(rows)
        self.limit = limit
        self.unit = unit
        super().__init__(
            f"{name} has {self.texts} longer than {limit:,} characters (GEMBOT_MAX_TEXT_CHARS) in "
            f"{self.where}: shorten {self.them}"
        )

    @property
    def texts(self) -> str:
        """How many texts: `a text`, `3 texts`."""
        return "a text" if len(self.rows) == 1 else f"{len(self.rows):,} texts"

    @property
    def them(self) -> str:
        return "it" if len(self.rows) == 1 else "them"

    @property
    def where(self) -> str:
        """Which rows: `row 3`, `rows 3, 7 and 12`, `rows 3, 7, 12, 15, 20 and 4 more`."""
        numbers = [str(n) for n in self.rows[: self.SHOWN]]
        if len(self.rows) == 1:
            return f"{self.unit} {numbers[0]}"
        rest = len(self.rows) - len(numbers)
        listed = ", ".join(numbers[:-1]) + f" and {numbers[-1]}" if not rest else ", ".join(numbers)
        return f"{self.unit}s {listed}" + (f" and {rest:,} more" if rest else "")
