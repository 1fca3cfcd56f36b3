"""The engine's own exceptions.

`core` never decides how a failure is worded for a person on a given surface; it raises one of
these with a plain sentence, and the CLI or a Slack handler chooses how to show it.
"""

from __future__ import annotations


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
