"""`gembot tune`: train the best model a label set can have, and keep it for every worker."""

from __future__ import annotations

import argparse
import sys

from bot.cli.context import Context
from bot.cli.output import ProgressBar, emit_json
from core.tuning import KINDS


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], scoped: argparse.ArgumentParser
) -> None:
    tune = commands.add_parser(
        "tune",
        parents=[scoped],
        help="fine-tune a label set's own embedder on its examples (minutes); classify uses it from then on",
    )
    tune.add_argument(
        "--kind",
        choices=KINDS,
        help="encoder: fine-tune the local model (its default); adapter: learn a map over frozen vectors "
        "(the default for Gemini embeddings, which cannot be fine-tuned)",
    )
    tune.add_argument("--seed", type=int, default=0, help="the random draw of training pairs (default 0)")
    shown = tune.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="always show the progress bar on stderr")
    shown.add_argument("--quiet", action="store_true", help="never show the progress bar")
    tune.set_defaults(run=run_tune)


def run_tune(ctx: Context) -> int:
    a = ctx.args
    bar = ProgressBar(label="tuning", enabled=a.progress or (not a.quiet and sys.stderr.isatty()))
    outcome = ctx.engine.tune(ctx.team, ctx.set_name, kind=a.kind, seed=a.seed, progress=bar.update)
    verdict = outcome.verdict
    changed = verdict.better and not outcome.kept
    if a.json:
        emit_json(
            {
                "set": outcome.set_name,
                "version": outcome.set_version,
                "kind": outcome.kind,
                "examples": outcome.examples,
                "seconds": outcome.seconds,
                "held_out": verdict.held_out,
                "tuned_accuracy": round(verdict.tuned_accuracy, 4),
                "plain_accuracy": round(verdict.plain_accuracy, 4),
                "used": outcome.kept,
                "details": outcome.details,
            }
        )
        return 1 if changed else 0
    if changed:
        print(
            f"gembot: set {outcome.set_name!r} changed while it was tuned; nothing was kept: tune it again",
            file=sys.stderr,
        )
        return 1
    what = "fine-tuned the local model" if outcome.kind == "encoder" else "fitted an adapter"
    print(
        f"set {outcome.set_name!r} (version {outcome.set_version}): {what} on {outcome.examples} examples "
        f"in {outcome.seconds:.0f} s"
    )
    score = (
        f"{verdict.tuned_accuracy:.1%} tuned vs {verdict.plain_accuracy:.1%} plain "
        f"on {verdict.held_out} held-out examples"
    )
    if outcome.kept:
        print(f"{score}: classify uses the tuned model from now on")
    elif verdict.held_out == 0:
        print("too few examples to hold any out and judge the tune: classify stays with the plain model")
    else:
        print(f"{score}: no better, so classify stays with the plain model")
    return 0
