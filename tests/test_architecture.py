"""The layering holds: `core` never loads Slack or the bot, `handlers` never loads the bot; and no
module file name appears twice under `bot/`, `handlers/` and `core/`."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("bot", "handlers", "core")
# What each layer may not import: nothing above it, and for `core` no Slack package either.
FORBIDDEN = {
    "core": {"slack_bolt", "slack_sdk", "bot", "handlers"},
    "handlers": {"bot"},
}

IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    package = importlib.import_module(sys.argv[1])
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"imported": names, "loaded": loaded}))
    """
)


@functools.cache
def import_everything(package: str) -> dict[str, list[str]]:
    """Import `package` and every module under it in a fresh interpreter; what got loaded."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def python_files(package: str) -> list[Path]:
    """Every `.py` file under the package's folder, whatever `walk_packages` would find."""
    return sorted(path for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize(("package", "forbidden"), sorted(FORBIDDEN.items()))
def test_layers_do_not_import_upwards(package: str, forbidden: set[str]) -> None:
    result = import_everything(package)
    assert forbidden.isdisjoint(result["loaded"]), forbidden & set(result["loaded"])


@pytest.mark.parametrize("package", LAYERS)
def test_the_layer_check_saw_every_module_on_disk(package: str) -> None:
    """The check above covers only what `walk_packages` finds: a folder without `__init__.py`
    would hide its modules from it. Every `.py` file of the package must have been imported."""
    on_disk = {module_name(path) for path in python_files(package)}
    assert len(on_disk) > 1  # a ROOT gone wrong would find nothing, and pass
    assert on_disk - set(import_everything(package)["imported"]) == set()


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module's import statements name, wherever they stand (a function's
    own `import slack_sdk` is loaded only when it runs, so importing the module does not show it)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("package", "forbidden"), sorted(FORBIDDEN.items()))
def test_no_module_names_an_upward_import_anywhere_in_its_source(package: str, forbidden: set[str]) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & forbidden)
        for path in python_files(package)
        if imported_packages(path) & forbidden
    }
    assert offenders == {}


def test_no_module_file_name_appears_twice_across_the_layers() -> None:
    """One name, one module: a newcomer who opens `usage.py` must not have two to choose from."""
    by_name: dict[str, list[str]] = {}
    for package in LAYERS:
        for path in python_files(package):
            if path.name != "__init__.py":
                by_name.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert len(by_name) > 1  # a ROOT gone wrong would find nothing, and pass
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
