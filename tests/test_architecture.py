"""The layering holds: `core` never loads Slack or the bot, `handlers` never loads the bot."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("core", {"slack_bolt", "slack_sdk", "bot", "handlers"}),
        ("handlers", {"bot"}),
    ],
)
def test_layers_do_not_import_upwards(package: str, forbidden: set[str]) -> None:
    result = import_everything(package)
    assert len(result["imported"]) > 1
    assert forbidden.isdisjoint(result["loaded"]), forbidden & set(result["loaded"])


@pytest.mark.parametrize("package", ["core", "handlers"])
def test_the_layer_check_saw_every_module_on_disk(package: str) -> None:
    """The check above covers only what `walk_packages` finds: a folder without `__init__.py`
    would hide its modules from it. Every `.py` file of the package must have been imported."""
    on_disk = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert on_disk - set(import_everything(package)["imported"]) == set()
