"""`gembot classify`, `similar`, `cluster` and `eval`: the engine's results on the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from bot.cli.context import Context
from bot.cli.output import Progress, emit_json, read_text_file, shorten, write_atomic, write_output
from core.csv_tables import annotate_table, parse_text_lines, parse_text_table
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.classify import Prediction

BULK_BATCH = 256


def register(
    commands: argparse._SubParsersAction, scoped: argparse.ArgumentParser, common: argparse.ArgumentParser
) -> None:
    cls = commands.add_parser("classify", parents=[scoped], help="classify texts against a label set")
    cls.add_argument("texts", nargs="*", metavar="TEXT")
    cls.add_argument("--input", "-i", help="a CSV file with a 'text' column (or - for standard input)")
    cls.add_argument("--output", "-o", help="with --input: write the annotated CSV here (default: stdout)")
    cls.add_argument("--method", choices=("auto", "centroid", "logreg"), default="auto")
    cls.add_argument("--progress", action="store_true", help="always show progress on stderr")
    cls.set_defaults(run=run_classify)

    sim = commands.add_parser("similar", parents=[common], help="how similar texts are to each other")
    sim.add_argument("texts", nargs="*", metavar="TEXT")
    sim.add_argument("--input", "-i", help="a file with one text per line (or a CSV with a 'text' column)")
    sim.add_argument("--heatmap", help="write a heatmap of the similarity matrix to this PNG file")
    sim.add_argument("--top", type=int, default=10, help="how many of the most similar pairs to show")
    sim.set_defaults(run=run_similar)

    clu = commands.add_parser("cluster", parents=[common], help="group texts by meaning")
    clu.add_argument("texts", nargs="*", metavar="TEXT")
    clu.add_argument("--input", "-i", help="a file with one text per line (or a CSV with a 'text' column)")
    clu.add_argument("--k", type=int, help="number of clusters (default: chosen by silhouette score)")
    clu.add_argument("--plot", help="write a 2-D scatter plot coloured by cluster to this PNG file")
    clu.set_defaults(run=run_cluster)

    ev = commands.add_parser("eval", parents=[scoped], help="cross-validate a label set on its own examples")
    ev.add_argument("--method", choices=("auto", "centroid", "logreg"), default="auto")
    ev.add_argument("--confusion", help="write the confusion matrix to this PNG file")
    ev.set_defaults(run=run_eval)


def _texts(args: argparse.Namespace, *, at_least: int) -> list[str]:
    texts = list(args.texts)
    if args.input:
        texts += parse_text_lines(read_text_file(args.input), filename=args.input)
    if not texts and not sys.stdin.isatty():
        texts = parse_text_lines(sys.stdin.read(), filename="standard input")
    if len(texts) < at_least:
        raise InvalidInput(f"give at least {at_least} texts (as arguments, with --input FILE or on stdin)")
    return texts


def _draw(path: str | None, render: Callable[[ModuleType], bytes]) -> None:
    """Write the PNG `render` draws with `core.plots` to `path`, when a command was asked for one."""
    if path:
        # matplotlib takes a second to import; only the commands that draw pay for it.
        from core import plots

        write_atomic(path, render(plots))


def _drawn(what: str, path: str | None) -> None:
    """Say on stderr where the figure `_draw` wrote went, if it wrote one."""
    if path:
        print(f"{what} written to {path}", file=sys.stderr)


def _prediction_json(text: str, p: Prediction) -> dict[str, object]:
    return {
        "text": text,
        "label": p.label,
        "confidence": round(p.confidence, 4),
        "scores": {label: round(score, 4) for label, score in p.scores.items()},
        "method": p.method,
        **({"best_label": p.best_label, "reason": p.reason} if p.label is None else {}),
    }


def _describe(p: Prediction) -> str:
    top = ", ".join(f"{label} {score:.2f}" for label, score in list(p.scores.items())[:3])
    if p.label is None:
        return f"not sure (closest: {p.best_label}; {p.reason})  [{top}]"
    return f"{p.label} ({p.confidence:.0%})  [{top}]"


def run_classify(ctx: Context) -> int:
    a = ctx.args
    if a.input:
        return _classify_file(ctx)
    if a.output:
        raise InvalidInput("--output goes with --input")
    if not a.texts:
        raise InvalidInput("give a text to classify, or --input FILE")
    predictions = ctx.engine.classify(ctx.team, ctx.set_name, a.texts, method=a.method)
    for text, p in zip(a.texts, predictions, strict=True):
        if a.json:
            emit_json(_prediction_json(text.strip(), p))
        else:
            print(f"{shorten(text, 50)!s:<52} → {_describe(p)}" if len(a.texts) > 1 else _describe(p))
    return 0


def _classify_file(ctx: Context) -> int:
    a = ctx.args
    if a.texts:
        raise InvalidInput("give texts as arguments or with --input, not both")
    # The same bound on texts as a CSV sent to the bot in Slack: refused whole, rows named.
    table = parse_text_table(read_text_file(a.input), filename=a.input, max_chars=ctx.settings.max_text_chars)
    texts = table.texts
    progress = Progress(
        len(texts), label="classified", enabled=a.progress or (len(texts) > 500 and sys.stderr.isatty())
    )
    predictions: list[Prediction] = []
    for start in range(0, len(texts), BULK_BATCH):
        predictions += ctx.engine.classify(
            ctx.team, ctx.set_name, texts[start : start + BULK_BATCH], method=a.method
        )
        progress.advance(len(texts[start : start + BULK_BATCH]))
    labels = ctx.engine.model_for(ctx.team, ctx.set_name, method=a.method).labels
    if a.json and not a.output:
        for text, p in zip(texts, predictions, strict=True):
            emit_json(_prediction_json(text, p))
        return 0
    annotated = annotate_table(table, predictions, labels)
    write_output(a.output, annotated, wrote=f"{len(predictions)} classified row(s)")
    return 0


def run_similar(ctx: Context) -> int:
    a = ctx.args
    texts = _texts(a, at_least=2)
    result = ctx.engine.similarity(texts, pairs=a.top)
    _draw(a.heatmap, lambda plots: plots.heatmap_png(result.matrix, result.texts))
    if a.json:
        emit_json(
            {
                "texts": result.texts,
                "matrix": [[round(float(x), 4) for x in row] for row in result.matrix],
                "pairs": [{"a": p.i, "b": p.j, "score": round(p.score, 4)} for p in result.pairs],
            }
        )
        return 0
    for p in result.pairs:
        print(f"{p.score:.3f}  {shorten(result.texts[p.i], 35)!s:<36} ↔ {shorten(result.texts[p.j], 35)}")
    _drawn("heatmap", a.heatmap)
    return 0


def run_cluster(ctx: Context) -> int:
    a = ctx.args
    texts = _texts(a, at_least=2)
    view = ctx.engine.cluster(texts, k=a.k)
    _draw(a.plot, lambda plots: plots.scatter_png(view.points, view.clustering.assignments, texts=view.texts))
    assignments = [int(x) for x in view.clustering.assignments]
    if a.json:
        emit_json(
            {
                "k": view.clustering.k,
                "chosen_by": view.clustering.chosen_by,
                "silhouette": view.clustering.silhouette,
                "clusters": [
                    {
                        "cluster": c,
                        "texts": [t for t, x in zip(view.texts, assignments, strict=True) if x == c],
                    }
                    for c in range(view.clustering.k)
                ],
            }
        )
        return 0
    how = {"given": "given", "silhouette": "chosen by silhouette score"}.get(
        view.clustering.chosen_by, "the only sensible number"
    )
    print(f"{view.clustering.k} clusters ({how})")
    for c in range(view.clustering.k):
        members = [t for t, x in zip(view.texts, assignments, strict=True) if x == c]
        print(f"\ncluster {c + 1} ({len(members)}):")
        for t in members:
            print(f"  - {shorten(t, 76)}")
    _drawn("plot", a.plot)
    return 0


def run_eval(ctx: Context) -> int:
    a = ctx.args
    ev = ctx.engine.evaluate(ctx.team, ctx.set_name, method=a.method)
    _draw(a.confusion, lambda plots: plots.confusion_png(ev.confusion, ev.labels))
    if a.json:
        emit_json(
            {
                "set": ctx.set_name,
                "method": ev.method,
                "strategy": ev.strategy,
                "examples": ev.n,
                "accuracy": round(ev.accuracy, 4),
                "coverage": round(ev.coverage, 4),
                "answered_accuracy": None if ev.answered_accuracy is None else round(ev.answered_accuracy, 4),
                "target_coverage": ev.target_coverage,
                "ece": round(ev.ece, 4),
                "labels": {
                    s.label: {
                        "precision": round(s.precision, 4),
                        "recall": round(s.recall, 4),
                        "f1": round(s.f1, 4),
                        "support": s.support,
                    }
                    for s in ev.per_label
                },
                "confusion": {"labels": ev.labels, "matrix": ev.confusion.tolist()},
            }
        )
        return 0
    print(f"set {ctx.set_name!r}: {ev.n} examples, {ev.strategy}, method {ev.method}")
    answered = "none" if ev.answered_accuracy is None else f"{ev.answered_accuracy:.1%}"
    print(f"accuracy {ev.accuracy:.1%}; answers {ev.coverage:.0%} of texts, {answered} right when it does")
    print(
        f"calibration error (ECE, 10 bins) {ev.ece:.3f}: stated confidence is off by {ev.ece:.1%} "
        f"on average; the not-sure threshold aims to answer {ev.target_coverage:.0%}"
    )
    print(f"\n{'label':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for s in ev.per_label:
        print(f"{shorten(s.label, 24):<24} {s.precision:>9.2f} {s.recall:>7.2f} {s.f1:>6.2f} {s.support:>5}")
    _drawn("confusion matrix", a.confusion)
    return 0
