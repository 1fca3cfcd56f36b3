"""`gembot labels …`: curate label sets from the command line."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.cli.context import Context
from bot.cli.output import emit_json, fields_json, read_text_file, shorten, write_output
from core.errors import InvalidInput
from core.labels_io import LabelRow, parse_labels, rows_to_csv, rows_to_json
from core.store import ExampleInput, ExampleRecord, LabelChangeRecord


def register(commands: argparse._SubParsersAction, scoped: argparse.ArgumentParser) -> None:
    labels = commands.add_parser(
        "labels", help="curate label sets (add, import, export, list, remove, history)"
    )
    sub = labels.add_subparsers(dest="labels_command", required=True, metavar="COMMAND")

    add = sub.add_parser("add", parents=[scoped], help="add one example to a label")
    add.add_argument("label")
    add.add_argument("text")
    add.add_argument("--author", help="who wrote the example")
    add.add_argument("--source", help="where it came from (a link)")
    add.set_defaults(run=run_add)

    imp = sub.add_parser(
        "import", parents=[scoped], help="import examples from CSV (text,label) or export JSON"
    )
    imp.add_argument("file", help="a .csv or .json file, or - for standard input")
    imp.set_defaults(run=run_import)

    exp = sub.add_parser("export", parents=[scoped], help="write a label set as CSV or JSON")
    exp.add_argument("--format", choices=("csv", "json"), default="csv")
    exp.add_argument("--output", "-o", help="write to this file instead of standard output")
    exp.add_argument(
        "--raw",
        action="store_true",
        help="CSV cells exactly as stored, without the quote that keeps a cell starting with "
        "= + - @ from running as a formula in a spreadsheet (importing such a file may drop a quote)",
    )
    exp.set_defaults(run=run_export)

    lst = sub.add_parser("list", parents=[scoped], help="list the examples of a set, or of one label")
    lst.add_argument("label", nargs="?")
    lst.set_defaults(run=run_list)

    rm = sub.add_parser(
        "remove", parents=[scoped], help="remove an example by id, a whole label, or the whole set"
    )
    target = rm.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="the example's id (see `labels list`)")
    target.add_argument("--label", dest="remove_label", help="remove this label and all its examples")
    target.add_argument(
        "--all",
        dest="remove_set",
        action="store_true",
        help="remove the whole set: its labels, examples, tuned encoder and kept models "
        "(its change log and classification log stay)",
    )
    rm.set_defaults(run=run_remove)

    sets = sub.add_parser("sets", parents=[scoped], help="list the workspace's label sets")
    sets.set_defaults(run=run_sets)

    history = sub.add_parser(
        "history",
        parents=[scoped],
        help="who changed the label sets, what and when (every set unless --set is given)",
    )
    history.add_argument("-n", "--limit", type=int, default=20, help="how many changes (default 20)")
    history.set_defaults(run=run_history)


def actor() -> str:
    """How the change log names a change made from the command line: `cli:` and the OS user."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in the environment or the password database
        return "cli"


def _record_json(r: ExampleRecord) -> dict[str, object]:
    return fields_json(r, "id", "label", "text", "author", "source_url", "created_at")


def run_add(ctx: Context) -> int:
    a = ctx.args
    length, limit = len(a.text.strip()), ctx.settings.max_text_chars
    if length > limit:
        # The same bound as `/label add` and an imported file: one set, whatever it came through.
        raise InvalidInput(
            f"the example is {length:,} characters long, more than {limit:,} (GEMBOT_MAX_TEXT_CHARS): "
            "shorten it"
        )
    result = ctx.store.add_examples(
        ctx.team,
        ctx.set_name,
        [ExampleInput(a.label, a.text, author=a.author, source_url=a.source)],
        actor=actor(),
    )
    if a.json:
        emit_json({"added": result.added, "skipped": result.skipped, "ids": result.ids})
    elif result.added:
        print(f"added example #{result.ids[0]} to {a.label!r} in set {ctx.set_name!r}")
    else:
        print(f"{a.label!r} already has that example; nothing changed")
    return 0


def run_import(ctx: Context) -> int:
    a = ctx.args
    # The same bound on texts as in Slack: no example longer than it enters a set from a file.
    rows = parse_labels(read_text_file(a.file), filename=a.file, max_chars=ctx.settings.max_text_chars)
    # A file's authors are its own claim; no Slack user added the rows.
    result = ctx.store.add_examples(ctx.team, ctx.set_name, rows, actor=actor(), author_from_file=True)
    if a.json:
        emit_json({"added": result.added, "skipped": result.skipped, "set": ctx.set_name})
    else:
        labels = len({r.label for r in rows})
        print(
            f"imported {result.added} example(s) into {labels} label(s) of set {ctx.set_name!r}"
            + (f" ({result.skipped} already there)" if result.skipped else "")
        )
    return 0


def run_export(ctx: Context) -> int:
    a = ctx.args
    records = ctx.store.list_examples(ctx.team, ctx.set_name)
    rows = [LabelRow(r.label, r.text, r.author, r.source_url) for r in records]
    # JSON is no spreadsheet format: its values are always as stored, --raw or not.
    data = rows_to_json(rows, set_name=ctx.set_name) if a.format == "json" else rows_to_csv(rows, raw=a.raw)
    write_output(a.output, data, wrote=f"{len(rows)} example(s)")
    return 0


def run_list(ctx: Context) -> int:
    a = ctx.args
    records = ctx.store.list_examples(ctx.team, ctx.set_name, label=a.label)
    if a.json:
        for r in records:
            emit_json(_record_json(r))
        return 0
    if not records:
        print(f"set {ctx.set_name!r} has no examples")
    for r in records:
        print(f"#{r.id:<6} {r.label:<20} {shorten(r.text, 70)}")
    return 0


def run_remove(ctx: Context) -> int:
    a = ctx.args
    if a.remove_set:
        ctx.store.remove_set(ctx.team, ctx.set_name, actor=actor())
        if a.json:
            emit_json({"set": ctx.set_name, "removed": True})
        else:
            print(f"removed label set {ctx.set_name!r}")
        return 0
    if a.remove_label:
        removed = ctx.store.remove_label(ctx.team, ctx.set_name, a.remove_label, actor=actor())
        if a.json:
            emit_json({"label": a.remove_label, "removed": removed})
        else:
            print(f"removed label {a.remove_label!r} and its {removed} example(s)")
        return 0
    record = ctx.store.remove_example(ctx.team, ctx.set_name, a.id, actor=actor())
    if a.json:
        emit_json(_record_json(record))
    else:
        print(f"removed example #{record.id} from {record.label!r}: {shorten(record.text)}")
    return 0


def run_sets(ctx: Context) -> int:
    sets = ctx.store.list_sets(ctx.team)
    if ctx.args.json:
        for s in sets:
            emit_json({"set": s.name, "version": s.version, "labels": dict(s.label_counts)})
        return 0
    if not sets:
        print(f"workspace {ctx.team!r} has no label sets yet: add one with `gembot labels add LABEL TEXT`")
    for s in sets:
        counts = ", ".join(f"{label} ({n})" for label, n in s.label_counts.items())
        print(f"{s.name} (version {s.version}): {counts}")
    return 0


def run_history(ctx: Context) -> int:
    a = ctx.args
    if a.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    changes = ctx.store.label_history(ctx.team, set_name=a.set, limit=a.limit)
    if a.json:
        for c in changes:
            emit_json(_change_json(c))
        return 0
    if not changes:
        scope = f"set {a.set!r}" if a.set else f"the label sets of workspace {ctx.team!r}"
        print(f"no changes to {scope} on record")
    for c in changes:
        print(f"{c.created_at:%Y-%m-%d %H:%M:%S} UTC  {c.actor or '(unknown)':<16} {_change_text(c)}")
    return 0


def _change_json(c: LabelChangeRecord) -> dict[str, object]:
    names = ("id", "set_name", "actor", "action", "label", "example_id", "text", "count", "created_at")
    return fields_json(c, *names, renamed={"set_name": "set"})


def _change_text(c: LabelChangeRecord) -> str:
    where = f"set {c.set_name!r}"
    if c.action == "add":
        return f"added #{c.example_id} to {c.label!r} in {where}: {shorten(c.text or '')}"
    if c.action == "remove":
        return f"removed #{c.example_id} from {c.label!r} in {where}: {shorten(c.text or '')}"
    if c.action == "import":
        into = f" into {c.label!r}" if c.label else ""
        return f"imported {c.count} example(s){into} in {where}"
    if c.action == "remove_label":
        return f"removed label {c.label!r} and its {c.count} example(s) from {where}"
    if c.action == "remove_set":
        return f"removed {where} ({c.count} example(s))"
    return f"{c.action} in {where}"
