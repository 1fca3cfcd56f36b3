"""Writing results: JSON lines, plain text, files written whole or not at all, a progress line."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO


def emit_json(obj: Any, *, stream: TextIO | None = None) -> None:
    """One JSON document on one line (JSON Lines when called once per result)."""
    print(json.dumps(obj, ensure_ascii=False), file=stream or sys.stdout)


def fields_json(record: object, *names: str, renamed: dict[str, str] | None = None) -> dict[str, object]:
    """The attributes `names` of `record`, in that order, as a JSON object (datetimes in ISO 8601),
    each under its own name or the one `renamed` gives it."""
    keys = renamed or {}
    values = ((name, getattr(record, name)) for name in names)
    return {keys.get(n, n): v.isoformat() if isinstance(v, datetime) else v for n, v in values}


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a whole file or nothing: a reader never sees a half-written output."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: str | None, data: str, *, wrote: str) -> None:
    """`data` to the file `path` (whole or not at all), saying on stderr that it `wrote` so much
    there; to standard output when there is no path, so that it can be piped."""
    if path:
        write_atomic(path, data)
        print(f"wrote {wrote} to {path}", file=sys.stderr)
    else:
        sys.stdout.write(data)


def read_text_file(path: str) -> str:
    """A file's text (UTF-8, with or without BOM); `-` reads standard input."""
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8-sig")


class Progress:
    """A one-line progress counter on stderr, shown on long inputs only."""

    def __init__(self, total: int, *, label: str, enabled: bool) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            percent = 100 * self.done // max(self.total, 1)
            end = "\n" if self.done >= self.total else ""
            print(
                f"\r{self.label} {self.done:,}/{self.total:,} ({percent}%)",
                end=end,
                file=sys.stderr,
                flush=True,
            )


def shorten(text: str, width: int = 60) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


class ProgressBar:
    """A bar on stderr for work counted in steps whose total may be revised: `[####----] 12/40`."""

    WIDTH = 30

    def __init__(self, *, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._started = time.monotonic()
        self._shown = -1.0

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        finished = done >= total
        # At most a few redraws a second: a tune takes thousands of steps.
        if not finished and now - self._shown < 0.25:
            return
        self._shown = now
        filled = self.WIDTH * done // max(total, 1)
        elapsed = now - self._started
        left = elapsed / done * (total - done) if done else 0.0
        print(
            f"\r{self.label} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done:,}/{total:,}"
            f" {_clock(elapsed)} elapsed, {_clock(left)} left ",
            end="\n" if finished else "",
            file=sys.stderr,
            flush=True,
        )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
