"""Running `gembot` in the test's process, as a user would from a shell: arguments in; exit code,
stdout and stderr out. Shared by the command-line tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


CLI = Callable[..., Run]

# Settings a developer's shell may carry that would change what the tests see.
AMBIENT = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMBOT_EMBEDDER", "GEMBOT_TEAM")


def runner(capsys: pytest.CaptureFixture[str]) -> CLI:
    """`gembot ARGS…` run in this process, its output captured."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def on_database(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **env: str,
) -> CLI:
    """`gembot` in `tmp_path` on `database_url`, with none of AMBIENT set and `env` added."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runner(capsys)
