"""Logging for the server: timestamps, levels, and secrets that never reach a log line.

Slack tokens (`xoxb-…`, `xapp-…`, …) and every secret the settings hold (`Settings.secrets`: the
signing and client secrets, the token keys, the Gemini key, the database password) are masked in every
record by a filter on the root handler, whatever logger wrote it and however it was formatted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from core.settings import Settings

_TOKEN = re.compile(r"\bx(?:ox[abposer]|app)-[A-Za-z0-9-]+")
MASK = "***"


class RedactingFilter(logging.Filter):
    """Masks Slack-token-shaped strings and the given secrets in a record's formatted message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, MASK)
        return _TOKEN.sub(MASK, message)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.exc_info:
            record.msg, record.args = clean, None
        if record.exc_info:
            # Tracebacks are formatted later from exc_info: format them now, redacted.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_server_logging(settings: Settings, *, level: int = logging.INFO) -> None:
    """Log to stderr with timestamps, secrets masked; libraries' chatter kept at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(settings.secrets()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "slack_bolt",
        "slack_sdk",
        "urllib3",
        "httpx",
        "google_genai",
        "transformers",
        "sentence_transformers",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
