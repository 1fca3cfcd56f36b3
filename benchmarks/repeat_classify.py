"""How long a repeat `gembot classify` takes on a 2,000-example set, now that fitted models are kept.

Imports 2,000 BANKING77 training examples (a seeded draw over all intents) with
`gembot labels import` into a fresh SQLite database, then times whole `gembot classify` processes
on a few test queries, with the local model and `--method auto`:

- first: the very first call, which embeds the examples and fits the model (once);
- refit: a call with the embeddings cached but no kept model (the kept ones removed first), what
  every call cost before models were kept;
- repeat: the call after that, which reads the kept model.

Refit and repeat are the medians of `--runs` rounds (each round removes the kept models, then
runs both). Wall time of the process, start-up and model loading included.

    python benchmarks/repeat_classify.py [--data ../shared/data/banking77] [--examples 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"
QUERIES = 10


def gembot() -> list[str]:
    found = shutil.which("gembot", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "bot.cli.main"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one `gembot` process took; its failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run([*gembot(), *args], env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gembot {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    with (options.data / "train.csv").open(newline="", encoding="utf-8") as handle:
        train_rows = [[row["text"], row["category"]] for row in csv.DictReader(handle)]
    with (options.data / "test.csv").open(newline="", encoding="utf-8") as handle:
        queries = [[row["text"]] for row in csv.DictReader(handle)][:QUERIES]
    chosen = random.Random(0).sample(train_rows, options.examples)

    with tempfile.TemporaryDirectory(prefix="gembot-repeat-") as scratch:
        work = Path(scratch)
        database = work / "gembot.db"
        write_csv(work / "examples.csv", ["text", "label"], chosen)
        write_csv(work / "queries.csv", ["text"], queries)
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMBOT_TEAM")
        }
        env |= {"DATABASE_URL": f"sqlite:///{database}", "GEMBOT_EMBEDDER": "local"}
        classify = ["classify", "--set", "banking", "--method", "auto", "--input", "queries.csv"]

        imported = run(["labels", "import", "--set", "banking", "examples.csv"], env, work)
        first = run(classify, env, work)
        refits, repeats = [], []
        for _ in range(options.runs):
            with sqlite3.connect(database) as conn:
                conn.execute("DELETE FROM trained_models")
            refits.append(run(classify, env, work))
            repeats.append(run(classify, env, work))
        labels = len({label for _, label in chosen})

    print(f"{options.examples:,} BANKING77 examples over {labels} intents, {QUERIES} queries, --method auto")
    print(f"  import:                                   {imported:6.2f} s")
    print(f"  first classify (embeds, fits):            {first:6.2f} s")
    print(f"  classify, embeddings cached, fit again:   {medians(refits)}")
    print(f"  repeat classify (reads the kept model):   {medians(repeats)}")


def medians(times: list[float]) -> str:
    each = ", ".join(f"{t:.2f}" for t in times)
    return f"{statistics.median(times):6.2f} s (median of {len(times)}: {each})"


if __name__ == "__main__":
    main()
