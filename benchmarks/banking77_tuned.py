"""BANKING77 the way a team would run it: `gembot labels import` → `gembot tune` → `gembot classify --input`.

Each draw gets a fresh SQLite database; the three commands run as the installed `gembot`, with the
local model, exactly as documented. Reported per size (3 and 10 examples per intent, draws with
seeds 0-4; the full training set, one draw), mean and spread:

- accuracy on the 3,080 test queries with an abstention counted as a miss, coverage, ECE;
- whether the tune was used (it is kept only if it beat the plain model on held-out examples),
  and its held-out figures;
- the wall time `gembot tune` took (the whole command: loading, tuning, judging, fitting the head).

    python benchmarks/banking77_tuned.py [--data ../shared/data/banking77] [--shots 3,10,full]
        [--seeds 0,1,2,3,4] [--json]

The draws are those of benchmarks/banking77.py, so the plain figures there compare one to one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_DATA, REPORTED_SEEDS, draw, in_scope_intents, load, pm, spread

from core.classify.confidence import expected_calibration_error


def gembot(env: dict[str, str], *args: str) -> str:
    # The `gembot` installed beside this Python, as a user's shell would run it.
    beside = Path(sys.executable).with_name("gembot")
    command = str(beside) if beside.exists() else shutil.which("gembot") or "gembot"
    done = subprocess.run([command, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"gembot {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def run_draw(
    texts: list[str],
    labels: np.ndarray,
    picked: np.ndarray,
    test_texts: list[str],
    test_labels: np.ndarray,
    *,
    keep_rows: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gembot-b77-") as folder:
        work = Path(folder)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'gembot.db'}", "GEMBOT_EMBEDDER": "local"}
        env.pop("GEMINI_API_KEY", None)
        write_csv(work / "train.csv", ["label", "text"], [[str(labels[i]), texts[i]] for i in picked])
        write_csv(work / "test.csv", ["text"], [[t] for t in test_texts])
        gembot(env, "labels", "import", str(work / "train.csv"), "--set", "banking77")
        started = time.perf_counter()
        tuned = json.loads(
            gembot(env, "tune", "--set", "banking77", "--json", "--quiet").strip().splitlines()[-1]
        )
        tune_seconds = time.perf_counter() - started
        gembot(
            env,
            "classify",
            "--set",
            "banking77",
            "--input",
            str(work / "test.csv"),
            "--output",
            str(work / "out.csv"),
        )
        with (work / "out.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    label = np.array([row["label"] for row in rows])
    best = np.array([row["best_label"] for row in rows])
    confidence = np.array([float(row["confidence"]) for row in rows])
    answered = label != ""
    correct = best == test_labels
    rows = {"answered": answered, "correct": correct} if keep_rows else {}
    return {
        **rows,
        "accuracy": float((correct & answered).mean()),
        "coverage": float(answered.mean()),
        "argmax_accuracy": float(correct.mean()),
        "ece": expected_calibration_error(confidence, correct),
        "tune_seconds": tune_seconds,
        "used": bool(tuned["used"]),
        "tuned_held_out": tuned["tuned_accuracy"],
        "plain_held_out": tuned["plain_accuracy"],
        "train_steps": tuned["details"].get("steps"),
    }


def held_out_intents(
    texts: list[str],
    labels: np.ndarray,
    test_texts: list[str],
    test_labels: np.ndarray,
    seeds: list[int],
    log: Any,
) -> int:
    """The draws of benchmarks/banking77.py's held-out intents, tuned: in-scope accuracy
    (abstention = miss) and the share of out-of-scope queries abstained on."""
    for seed in seeds:
        keep = in_scope_intents(labels, seed)
        picked = np.flatnonzero([label in keep for label in labels])
        in_scope = np.array([label in keep for label in test_labels])
        figures = run_draw(texts, labels, picked, test_texts, test_labels, keep_rows=True)
        abstained = ~figures["answered"]
        correct = figures["correct"]
        log(
            f"  held-out intents seed {seed}: in-scope {100 * (correct & ~abstained)[in_scope].mean():.1f}%, "
            f"out of scope abstained {100 * abstained[~in_scope].mean():.1f}%, tune "
            f"{figures['tune_seconds']:.0f} s, {'used' if figures['used'] else 'not used'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--shots", default="3,10,full", help="comma-separated: numbers, or 'full'")
    parser.add_argument("--seeds", default=",".join(map(str, REPORTED_SEEDS)))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--held-out-intents",
        action="store_true",
        help="instead: train on 3/4 of the intents (all their examples); the rest are out of scope",
    )
    args = parser.parse_args(argv)
    log = (
        (lambda *a: print(*a, file=sys.stderr, flush=True))
        if args.json
        else (lambda *a: print(*a, flush=True))
    )
    texts, labels = load(args.data / "train.csv")
    test_texts, test_labels = load(args.data / "test.csv")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.held_out_intents:
        return held_out_intents(texts, labels, test_texts, test_labels, seeds, log)
    results: dict[str, Any] = {}
    for size in args.shots.split(","):
        shots = None if size == "full" else int(size)
        runs: dict[str, list[float]] = {}
        used: list[bool] = []
        for seed in seeds if shots is not None else seeds[:1]:
            figures = run_draw(texts, labels, draw(labels, shots, seed), test_texts, test_labels)
            used.append(figures.pop("used"))
            steps = figures.pop("train_steps")
            for key, value in figures.items():
                runs.setdefault(key, []).append(value)
            log(
                f"  {size:>4} seed {seed}: {100 * figures['accuracy']:.1f}% (coverage "
                f"{100 * figures['coverage']:.1f}%), tune {figures['tune_seconds']:.0f} s, {steps} steps, "
                f"held out {100 * figures['tuned_held_out']:.1f}% tuned vs "
                f"{100 * figures['plain_held_out']:.1f}% plain: {'used' if used[-1] else 'not used'}"
            )
        results[size] = {"used": used, **{key: spread(values) for key, values in runs.items()}}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("\nimport → tune → classify --input, local model; abstention = miss; mean ± std over draws")
    print(f"{'shots':>5}  {'accuracy':>14}  {'coverage':>14}  {'ECE':>13}  {'tune (s)':>9}  used")
    for size, r in results.items():
        print(
            f"{size:>5}  {pm(r['accuracy']):>14}  {pm(r['coverage']):>14}  "
            f"{pm(r['ece'], percent=False):>13}  {r['tune_seconds']['mean']:9.0f}  "
            f"{sum(r['used'])}/{len(r['used'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
