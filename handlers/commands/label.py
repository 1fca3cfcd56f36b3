"""`/label`: curate the workspace's label sets from Slack.

    /label add LABEL: TEXT      /label list [LABEL]     /label remove ID
    /label sets                 /label eval [METHOD]    /label export [csv|json]
    /label history [N]          /label tune [NAME]

Every subcommand takes `set:NAME` (before or after the subcommand; default: the "default" set;
`history` without it shows the changes to every set). Who may add and remove is
`handlers.rights`' business; every change is logged with who made it, and `history` shows the log.
Input is checked in the ack, so a mistake gets its one-line answer at once and privately; the
work runs after the ack. Answers are private too, except what the channel can use: an
evaluation (with the confusion matrix as an image). A file with a set's examples (an export, a
listing too long for a message) goes to the requester alone, in their DM with the bot; where
they asked elsewhere, a private line there says so. Its cells are safe to open in a spreadsheet.
`tune` (the set as `NAME` or `set:NAME`; the same right as adding to it) asks for the set's own
embedder to be tuned in the background (`bot.retune`), and the requester hears how it did by DM.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext

from core import daily_limits
from core.classify import METHODS, Evaluation
from core.csv_cells import csv_text
from core.labels_io import LabelRow, rows_to_csv, rows_to_json
from core.store import ExampleInput, ExampleRecord, LabelChangeRecord, SetSummary
from core.store import validation as checks
from handlers import bounds, label_sets, text, tune_notices
from handlers.acks import acknowledge_or_refuse
from handlers.deps import Deps, deps_of
from handlers.label_sets import bold, mention
from handlers.request import SlackRequest
from handlers.text import plural

USAGE = "\n".join(
    [
        "Usage of `/label` (add `set:NAME` to use another set than `default`):",
        "• `/label add LABEL: TEXT` — add an example",
        "• `/label list [LABEL]` — the examples, with their ids",
        "• `/label remove ID` — remove an example",
        "• `/label sets` — the workspace's label sets",
        "• `/label eval [auto|centroid|logreg]` — how well the set classifies its own examples",
        "• `/label export [csv|json]` — the set as a file, sent to you in a DM",
        "• `/label history [N]` — the latest N changes to the label sets: who, what, when",
        "• `/label tune [NAME]` — tune the set's own model in the background; you get a DM when it is done",
    ]
)
ADD_USAGE = "Usage: `/label add LABEL: TEXT`, for example `/label add billing: I was charged twice`."
REMOVE_USAGE = "Usage: `/label remove ID`, with the id `/label list` shows, for example `/label remove 12`."
TUNE_USAGE = "Usage: `/label tune NAME` (or `/label tune set:NAME`), for example `/label tune billing`."
HISTORY_USAGE = "Usage: `/label history [N]`, with N from 1 to 100 (default 20)."
#: The engine's methods as the usage names them, its default (`auto`) first.
EVAL_METHODS = "|".join(sorted(METHODS, key=lambda method: method != "auto"))
HISTORY_DEFAULT = 20
HISTORY_MAX = 100
FORMATS = ("csv", "json")
LIST_TEXT_WIDTH = 120

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelCommand:
    """A parsed `/label` command."""

    action: str
    set_name: str | None
    label: str | None = None
    content: str | None = None
    example_id: int | None = None
    option: str | None = None
    count: int | None = None

    @property
    def set(self) -> str:
        return self.set_name or label_sets.DEFAULT_SET


def parse(command_text: str, *, max_chars: int | None = None) -> LabelCommand | str:
    """The request, or the one-line answer to a command that cannot be run (usage and mistakes).

    `max_chars` bounds the text of an example (None: no bound).
    """
    outer = label_sets.take_set(command_text)
    # The subcommand ends at any whitespace: Slack keeps the newlines a user typed.
    parts = outer.rest.split(None, 1)
    action = parts[0].lower() if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    inner = label_sets.take_set(rest)
    set_name = inner.set_name or outer.set_name
    rest = inner.rest
    if set_name is not None and (problem := label_sets.refusal(checks.set_name, set_name)):
        return problem
    if action == "add":
        label, colon, content = rest.partition(":")
        label, content = text.plain(label), text.plain(content)
        if not colon:
            return ADD_USAGE
        if not label:
            return "The label is missing: " + ADD_USAGE
        if not content:
            return "The text is missing: " + ADD_USAGE
        too_long = bounds.too_long(content, max_chars, what="The example") if max_chars is not None else None
        return (
            label_sets.refusal(checks.label_name, label)
            or too_long
            or LabelCommand("add", set_name, label=label, content=content)
        )
    if action == "list":
        return LabelCommand("list", set_name, label=text.plain(rest) or None)
    if action in ("remove", "rm", "delete"):
        number = rest.strip().lstrip("#")
        if not re.fullmatch(r"\d{1,18}", number):
            return REMOVE_USAGE
        return LabelCommand("remove", set_name, example_id=int(number))
    if action == "sets":
        return LabelCommand("sets", set_name)
    if action in ("history", "log"):
        wanted = rest.strip() or str(HISTORY_DEFAULT)
        if not re.fullmatch(r"\d{1,3}", wanted) or not 1 <= int(wanted) <= HISTORY_MAX:
            return HISTORY_USAGE
        return LabelCommand("history", set_name, count=int(wanted))
    if action in ("eval", "evaluate"):
        method = rest.strip().lower() or "auto"
        if method not in METHODS:
            shown = text.escape(rest.strip()[:40])
            return f"Usage: `/label eval [{EVAL_METHODS}]` — `{shown}` is not one."
        return LabelCommand("eval", set_name, option=method)
    if action == "tune":
        named = text.plain(rest).strip().strip('"').strip()
        # One set only: a name after `set:NAME`, or a `set:` after the name, must be the same one.
        if "set:" in named.lower() or (named and set_name is not None and named != set_name):
            return TUNE_USAGE
        chosen = named or set_name
        if named and (problem := label_sets.refusal(checks.set_name, named)):
            return problem
        return LabelCommand("tune", chosen)
    if action == "export":
        fmt = rest.strip().lower() or "csv"
        if fmt not in FORMATS:
            return f"Usage: `/label export [csv|json]` — `{text.escape(rest.strip()[:40])}` is not one."
        return LabelCommand("export", set_name, option=fmt)
    return USAGE


def register(app: App) -> None:
    """`/label`: parsed in the ack (mistakes answered there), run by a lazy listener."""
    app.command("/label")(ack=acknowledge_label, lazy=[run_label])


def _parse(deps: Deps, command: dict[str, Any]) -> LabelCommand | str:
    return parse(command.get("text") or "", max_chars=deps.settings.max_text_chars)


def acknowledge_label(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Answer usage and mistakes privately in the ack."""
    parsed = _parse(deps_of(context), command)
    acknowledge_or_refuse(ack, parsed if isinstance(parsed, str) else None)


def run_label(command: dict[str, Any], context: BoltContext) -> None:
    """Run the subcommand; `eval` embeds the set's examples, charged to the requester."""
    deps, request = deps_of(context), SlackRequest.of_command(command, context)
    parsed = _parse(deps, command)
    if isinstance(parsed, str):
        return  # already answered by the ack
    with daily_limits.acting_for(deps.meter, request.actor), request.replier.reporting_errors():
        SUBCOMMANDS[parsed.action](deps, request, parsed)


# -- the subcommands ---------------------------------------------------------------------------


def _add(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    assert command.label is not None and command.content is not None
    user = request.user
    if label_sets.curation_refused(deps, request):
        return
    result = deps.store.add_examples(
        team,
        command.set,
        [ExampleInput(command.label, command.content, author=user)],
        actor=user,
        added_by=user,
    )
    summary = deps.store.get_set(team, command.set)
    where = f"{bold(command.label)} in set {bold(command.set)}"
    if result.added:
        replier.ephemeral(
            f":white_check_mark: Added example #{result.ids[0]} to {where} "
            f"(the set now has {_size(summary)})."
        )
    else:
        replier.ephemeral(f"{where} already has that example; nothing changed.")


def _list(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    found = _found(deps, request, command, "/label list")
    if found is None:
        return
    records = deps.store.list_examples(team, command.set, label=command.label)
    what = f"set {bold(command.set)}" + (f", label {bold(command.label)}" if command.label else "")
    if not records:
        replier.ephemeral(f"No examples in {what} yet — add some with `/label add LABEL: TEXT`.")
        return
    lines = [_line(r) for r in records]
    heading = f"{plural(len(records), 'example')} in {what}:"
    listing = "\n".join(lines)
    if len(listing) <= text.MESSAGE_LIMIT:
        body = text.sections(listing)
        if len(body) < text.MAX_BLOCKS:
            replier.ephemeral(text.fallback(heading), blocks=[text.section(heading), *body])
            return
    filename = f"{_file_stem(command.set)}-examples.csv"
    sent = replier.upload_privately(
        _listing_csv(records),
        filename=filename,
        title=f"Examples of label set {command.set}",
        comment=f"{plural(len(records), 'example')} in {what}, with their ids.",
    )
    if sent is None:
        return  # the user has been told why
    where = "attached here" if sent.in_place else "in your DM with me"
    preview = "\n".join(lines[:20])
    replier.ephemeral(
        f"{heading} too many to show here, so I sent the full list {where} as `{filename}`.",
        blocks=[
            text.section(f"{heading} too many to show here; the first 20:"),
            *text.sections(preview),
            text.context(f"The full list is {where}, as `{filename}`."),
        ],
    )


def _remove(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    assert command.example_id is not None
    found = _found(deps, request, command, "/label remove")
    if found is None:
        return
    user = request.user
    example = deps.store.get_example(team, command.set, command.example_id)
    refusal = deps.rights.removal_refusal(
        request.client,
        team,
        user,
        author=example.author,
        added_by=deps.store.example_added_by(team, example.id),
        author_from_file=example.author_from_file,
    )
    if refusal:
        replier.ephemeral(f":no_entry: {refusal}")
        return
    removed = deps.store.remove_example(team, command.set, command.example_id, actor=user)
    replier.ephemeral(
        f":wastebasket: Removed example #{removed.id} from {bold(removed.label)} in set "
        f"{bold(command.set)}: “{text.neutralise(label_sets.shorten(removed.text, 200))}”"
    )


def _sets(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    sets = deps.store.list_sets(team)
    team_note = text.context(
        f"This workspace's team id is `{text.escape(team)}`: on the command line, "
        f"`gembot labels list --team {text.escape(team)} --set NAME` reads the same sets."
    )
    if not sets:
        replier.ephemeral(label_sets.NO_SET_YET, blocks=[text.section(label_sets.NO_SET_YET), team_note])
        return
    evaluations = deps.store.latest_evaluations(team)
    entries = []
    for summary in sets:
        counts = " · ".join(
            f"{text.neutralise(label_sets.shorten(label, 40))} {n}"
            for label, n in summary.label_counts.items()
        )
        entry = f"{bold(summary.name)} — {_size(summary)}, version {summary.version}\n{counts}"
        latest = evaluations.get(summary.name)
        if latest is not None:
            stale = "" if latest.set_version == summary.version else " (the set changed since)"
            entry += (
                f"\n_Last evaluated: {latest.accuracy:.0%} accuracy, {latest.method}, "
                f"{latest.strategy}, {latest.created_at:%Y-%m-%d}{stale}_"
            )
        entries.append(entry)
    heading = f"{plural(len(sets), 'label set')} in this workspace:"
    body = text.sections("\n\n".join(entries))[: text.MAX_BLOCKS - 2]
    replier.ephemeral(heading, blocks=[text.section(heading), *body, team_note])


def _eval(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    assert command.option is not None
    problem = label_sets.set_problem(
        deps.store, team, command.set_name, command="/label eval", purpose="to be evaluated"
    )
    if problem:
        replier.ephemeral(problem)
        return
    version = deps.store.get_set(team, command.set).version
    header = [text.context(f"{mention(request.user)} asked to evaluate label set {bold(command.set)}:")]
    working = replier.working("Evaluating the label set…", header=header)
    evaluation = deps.engine.evaluate(team, command.set, method=command.option)
    deps.store.record_evaluation(team, command.set, set_version=version, **evaluation.headline())
    working.finish(
        evaluation_markdown(command.set, evaluation),
        header=header,
        filename=f"{_file_stem(command.set)}-evaluation.md",
        title=f"Evaluation of label set {command.set}",
    )
    # matplotlib costs a second to import: only an evaluation pays for it.
    from core.plots import confusion_png

    replier.upload(
        confusion_png(evaluation.confusion, evaluation.labels),
        filename=f"{_file_stem(command.set)}-confusion.png",
        title=f"Confusion matrix of label set {command.set}",
        comment=f"Confusion matrix of label set {bold(command.set)} (rows: true label, columns: predicted).",
    )


def _export(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    found = _found(deps, request, command, "/label export")
    if found is None:
        return
    records = deps.store.list_examples(team, command.set)
    if not records:
        replier.ephemeral(f"Set {bold(command.set)} has no examples to export yet.")
        return
    rows = [LabelRow(r.label, r.text, r.author, r.source_url) for r in records]
    content = rows_to_json(rows, set_name=command.set) if command.option == "json" else rows_to_csv(rows)
    filename = f"{_file_stem(command.set)}.{command.option}"
    sent = replier.upload_privately(
        content,
        filename=filename,
        title=f"Label set {command.set}",
        comment=(
            f"Label set {bold(command.set)}: {_size(found)}, exported by {mention(request.user)}. "
            "Import it with `gembot labels import FILE`, or send it to me in a DM with the word `import`."
        ),
    )
    if sent is not None and not sent.in_place:
        replier.ephemeral(
            f"I sent you `{filename}`, the export of set {bold(command.set)}, in your DM with me."
        )


def _tune(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    problem = label_sets.set_problem(
        deps.store, team, command.set_name, command="/label tune", purpose="to be tuned"
    )
    if problem:
        replier.ephemeral(problem)
        return
    user = request.user
    if label_sets.curation_refused(deps, request):
        return
    if not deps.settings.retune:
        replier.ephemeral(
            "Tuning in the background is off here (GEMBOT_RETUNE=0): whoever runs Gembot can tune "
            f"set {bold(command.set)} with `gembot tune --set NAME`."
        )
        return
    deps.store.request_tune(team, command.set, requested_by=user)
    replier.ephemeral(tune_notices.requested(command.set, settle_seconds=deps.settings.retune_settle_seconds))


def _history(deps: Deps, request: SlackRequest, command: LabelCommand) -> None:
    replier, team = request.replier, request.workspace
    changes = deps.store.label_history(
        team, set_name=command.set_name, limit=command.count or HISTORY_DEFAULT
    )
    scope = f"label set {bold(command.set_name)}" if command.set_name else "the label sets"
    if not changes:
        replier.ephemeral(f"No changes to {scope} on record yet.")
        return
    heading = f"The latest {plural(len(changes), 'change')} to {scope}, newest first:"
    lines = [change_line(c, with_set=command.set_name is None) for c in changes]
    body = text.sections("\n".join(lines))[: text.MAX_BLOCKS - 1]
    replier.ephemeral(text.fallback(heading), blocks=[text.section(heading), *body])


def _found(deps: Deps, request: SlackRequest, command: LabelCommand, name: str) -> SetSummary | None:
    """The command's set, or None when there is no such set (then the requester has been told,
    privately, which sets there are; `name` is the command they typed, "/label list")."""
    found = label_sets.find_set(deps.store, request.workspace, command.set_name, command=name)
    if isinstance(found, str):
        request.replier.ephemeral(found)
        return None
    return found


SUBCOMMANDS: dict[str, Callable[[Deps, SlackRequest, LabelCommand], None]] = {
    "add": _add,
    "list": _list,
    "remove": _remove,
    "sets": _sets,
    "eval": _eval,
    "export": _export,
    "history": _history,
    "tune": _tune,
}


# -- formatting ---------------------------------------------------------------------------------


def change_line(change: LabelChangeRecord, *, with_set: bool = True) -> str:
    """One change as a line of mrkdwn: when (in the reader's time zone), who, what."""
    in_set = f" in set {bold(change.set_name)}" if with_set else ""
    if change.action == "add":
        what = (
            f"added #{change.example_id} to {bold(change.label or '?')}{in_set}: "
            f"“{text.neutralise(label_sets.shorten(change.text or '', 80))}”"
        )
    elif change.action == "remove":
        what = (
            f"removed #{change.example_id} from {bold(change.label or '?')}{in_set}: "
            f"“{text.neutralise(label_sets.shorten(change.text or '', 80))}”"
        )
    elif change.action == "import":
        into = f" into {bold(change.label)}" if change.label else ""
        what = f"imported {plural(change.count, 'example')}{into}{in_set}"
    elif change.action == "remove_label":
        what = f"removed label {bold(change.label or '?')} and its {plural(change.count, 'example')}{in_set}"
    elif change.action == "remove_set":
        what = f"removed the set {bold(change.set_name)} ({plural(change.count, 'example')})"
    else:
        what = f"{text.escape(change.action)}{in_set}"
    return f"{when(change.created_at)} · {who(change.actor)} {what}"


def who(actor: str | None) -> str:
    """A change's actor in words: a mention for a Slack user, the command line, or "someone"."""
    if actor and (actor == "cli" or actor.startswith("cli:")):
        name = actor.partition(":")[2]
        return "the command line" + (f" ({text.escape(name)})" if name else "")
    return mention(actor)


def when(moment: datetime) -> str:
    """A time Slack shows in the reader's own time zone (`<!date^…>`), with a UTC fallback."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"<!date^{int(aware.timestamp())}^{{date_short}} {{time}}|{aware:%Y-%m-%d %H:%M} UTC>"


def evaluation_markdown(set_name: str, evaluation: Evaluation) -> str:
    """An evaluation as Markdown: the headline figures, then precision/recall/F1 per label as a table.

    A table too long for one message goes up whole as a file (`Placeholder.finish` decides).
    """
    answered = (
        "it answers none of them"
        if evaluation.answered_accuracy is None
        else f"it would answer {evaluation.coverage:.0%} of texts, and is right on "
        f"{evaluation.answered_accuracy:.0%} of those"
    )
    lines = [
        f"**{evaluation.accuracy:.1%} accuracy** for label set `{_code(set_name)}` over "
        f"{evaluation.n} examples ({evaluation.strategy}, method {evaluation.method}); "
        f"at the current thresholds {answered}. Its stated confidence is off by "
        f"{evaluation.ece:.1%} on average (expected calibration error).",
        "",
        "```",
        f"{'label':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}",
    ]
    for score in evaluation.per_label:
        lines.append(
            f"{_code(label_sets.shorten(score.label, 24)):<24} {score.precision:>9.2f} "
            f"{score.recall:>7.2f} {score.f1:>6.2f} {score.support:>5}"
        )
    lines.append("```")
    return "\n".join(lines)


def _code(name: str) -> str:
    # A name inside a code span or block must not end it.
    return name.replace("`", "'")


def _size(summary: SetSummary) -> str:
    return (
        f"{plural(len(label_sets.labelled(summary)), 'label')} and "
        f"{plural(label_sets.examples_count(summary), 'example')}"
    )


def _line(record: ExampleRecord) -> str:
    shown = text.neutralise(label_sets.shorten(record.text, LIST_TEXT_WIDTH))
    return f"`#{record.id}` {bold(record.label)} — {shown}"


def _listing_csv(records: list[ExampleRecord]) -> str:
    header = ("id", "label", "text", "author", "source_url")
    return csv_text([header, *((r.id, r.label, r.text, r.author, r.source_url) for r in records)])


def _file_stem(set_name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", set_name).strip("-.") or "labels"
