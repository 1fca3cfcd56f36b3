"""The `gembot` command line: the engine's surface for scripting, bulk runs and curation."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.cli import analysis, curation, database, experiment, gemini_commands, serve, tune
from bot.cli.context import Context
from core.errors import GembotError


def build_parser() -> argparse.ArgumentParser:
    # Options every command understands; `scoped` adds the workspace and label set.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print results as JSON (one object per line)")
    scoped = argparse.ArgumentParser(add_help=False, parents=[common])
    scoped.add_argument("--team", help="Slack workspace (team) id; default $GEMBOT_TEAM or 'local'")
    scoped.add_argument("--set", help="label set name (default: 'default')")

    parser = argparse.ArgumentParser(
        prog="gembot",
        description="Gembot: classification against curated labels, similarity and clustering of texts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    curation.register(commands, scoped)
    analysis.register(commands, scoped, common)
    tune.register(commands, scoped)
    database.register(commands, common)
    gemini_commands.register(commands, common)
    experiment.register(commands, common)
    serve.register(commands, common)
    return parser


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # Libraries chatter at WARNING about things the user cannot act on.
    for noisy in ("transformers", "sentence_transformers", "httpx", "httpx2", "urllib3", "google_genai"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


# What a file the user named can do wrong, in the user's words.
_FILE_ERRORS: dict[type[OSError], str] = {
    FileNotFoundError: "no such file: {}",
    IsADirectoryError: "{} is a directory, not a file",
    PermissionError: "permission denied: {}",
}


def _error_line(exc: Exception) -> str:
    """An error the user can fix, in one line."""
    if isinstance(exc, UnicodeDecodeError):
        return "the input is not UTF-8 text"
    for kind, words in _FILE_ERRORS.items():
        if isinstance(exc, kind):
            return words.format(exc.filename)
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors the user can fix are one line on stderr and exit status 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        ctx = Context(args)
        return int(args.run(ctx))
    except (GembotError, FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        print(f"error: {_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `gembot labels export | head` is fine: the reader simply stopped.
        return 0


if __name__ == "__main__":
    sys.exit(main())
