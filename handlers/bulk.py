"""CSV files sent to the bot by DM: `import` adds label examples, `classify` labels a whole table.

`import [set:NAME]` reads `text,label` rows (or a Gembot export) and adds them to the set in one
transaction: a file with a bad row, or more rows than GEMBOT_MAX_CSV_ROWS, adds nothing. Its
`author` and `source_url` columns are stored as the file gives them: they are the importer's
word, not Slack's, and the importer is kept as who added the rows (see `import_examples`).
`classify [set:NAME]` reads a CSV with a `text` column, classifies it in batches while a progress
message counts the rows, and answers with the same CSV plus `label`, `best_label`, `confidence`
and one `score:<label>` column per label (every cell safe to open in a spreadsheet, see
`core.csv_cells`), and a bar chart of how many rows went to each label. Either way a file with a
text longer than GEMBOT_MAX_TEXT_CHARS is refused whole, naming the rows, before anything is
stored or classified.

A classification is a stored job (`core.bulk_runner`): each batch is recorded as it finishes, so when
the process stops or dies half-way, the next one (`resume`) carries on from the last batch, in
the same thread and the same progress message, and the result is still delivered once.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from slack_sdk import WebClient

from core import daily_limits
from core.bulk_runner import KIND_CLASSIFY_CSV, CsvJob, CsvResult, JobInterrupted
from core.csv_tables import annotate_table, parse_text_table
from core.errors import InvalidInput, NotEnoughLabels, NotFound, TextsTooLong
from core.labels_io import parse_labels
from core.store import ExampleInput, JobRecord, LeaseLost
from handlers import attachments, bounds, downloads, text
from handlers.deps import Deps
from handlers.label_sets import DEFAULT_SET
from handlers.replies import Placeholder, Replier, ReplyTo
from handlers.request import SlackRequest
from handlers.text import plural

log = logging.getLogger(__name__)
T = TypeVar("T")

Action = Literal["import", "classify"]
SOURCE = "slack-csv"
# Rows per classification batch at least, and progress messages per file at most: a big file
# is classified in bigger batches so that chat.update stays well inside Slack's rate limit.
MIN_BATCH = 100
MAX_UPDATES = 20
NO_LABEL = "(no confident label)"
#: Keys of a job's parameters: where it answers (`ReplyTo.to_json`), and its progress message.
REPLY_TO = "reply_to"
PROGRESS_TS = "message_ts"

_WORDS = re.compile(r"\b(import|classify)\b", re.IGNORECASE)
_SET = re.compile(r'(?<!\S)set:(?:"([^"]*)"|(\S+))', re.IGNORECASE)

USAGE = (
    "Send me the CSV file with the word `import` to add its `text,label` rows as label examples, "
    "or with the word `classify` to label its `text` column. Add `set:NAME` for a label set other "
    "than `default`."
)
ASK_ABOUT_IT = "Or ask me a question about it (ending in `?`) and I'll read it as text."
NEED_A_FILE = "Attach the CSV file to the message that says `{action}`, and I'll take it from there."


@dataclass(frozen=True)
class CsvRequest:
    """What a message asks of a CSV file: the action (None when it names none) and the set."""

    action: Action | None
    set_name: str
    ambiguous: bool = False


def parse_request(message: str) -> CsvRequest:
    """`import`, `classify` and `set:NAME` as words anywhere in the message."""
    actions = {m.lower() for m in _WORDS.findall(message)}
    found = _SET.search(message)
    set_name = (found.group(1) or found.group(2) or "").strip("*_`'\".,;: ") if found else DEFAULT_SET
    if len(actions) > 1:
        return CsvRequest(None, set_name or DEFAULT_SET, ambiguous=True)
    action: Action | None = "import" if "import" in actions else "classify" if actions else None
    return CsvRequest(action, set_name or DEFAULT_SET)


def names_a_job(message: str) -> bool:
    """Whether `message` says `import` or `classify` (one or both): a CSV sent with it is a job."""
    asked = parse_request(message)
    return asked.action is not None or asked.ambiguous


def is_bare_request(message: str) -> bool:
    """True for a message that is only `import` or `classify` (and `set:NAME`): it needs a file."""
    rest = _SET.sub(" ", _WORDS.sub(" ", message)).strip(" \t\n.!")
    return bool(_WORDS.search(message)) and not rest


def handle(deps: Deps, request: SlackRequest, *, file: Mapping[str, Any], message: str) -> None:
    """Do what `message` asks of the CSV `file`; run inside `request.replier.reporting_errors()`."""
    asked = parse_request(message)
    name = downloads.file_name(file)
    replier = request.replier
    if asked.ambiguous:
        replier.post(
            f"Should I `import` or `classify` {text.escape(name)}? Send it again with one of the two."
        )
        return
    if asked.action is None:
        replier.post(f"I got {text.escape(name)}. {USAGE} {ASK_ABOUT_IT}")
        return
    if asked.action == "import":
        refusal = deps.rights.curation_refusal(request.client, request.workspace, request.user)
        if refusal:
            replier.post(f":no_entry: {refusal}")
            return
        import_examples(deps, request, file=file, set_name=asked.set_name)
    else:
        classify_table(deps, request, file=file, set_name=asked.set_name)


def import_examples(deps: Deps, request: SlackRequest, *, file: Mapping[str, Any], set_name: str) -> None:
    """Add the file's rows to the set, all or nothing, and say how many went where (logged as the
    requester's change).

    Slack vouches for the `author` and `source_url` that `/label add` and the message shortcut
    store; a file's are whatever its sender typed. They are kept as given (an export comes back
    whole) and the change log names the requester as the importer, but no surface shows them as Slack's
    word: no mention of the author, no link to the source (`/label list` shows neither), only
    the plain cells of a file. Each row this import adds is marked as added by the requester with
    an author from a file, so `handlers.rights` lets the importer (and admins) remove it, never a
    claimed author; a text already in its label is skipped and keeps its own provenance.
    """
    name = downloads.file_name(file)
    set_shown = f"*{text.escape(set_name)}*"
    team, user, replier = request.workspace, request.user, request.replier
    working = replier.working(f"Importing {text.escape(name)} into set {set_shown}…")
    _, rows = _read(deps, request, file, parse_labels, so="I imported nothing")
    _check_size(deps, name, len(rows), rows_are="examples", verb="import", so=", so I imported nothing")
    items = [ExampleInput(r.label, r.text, author=r.author, source_url=r.source_url) for r in rows]
    result = deps.store.add_examples(team, set_name, items, actor=user, added_by=user, author_from_file=True)
    labels = len({r.label for r in rows})
    already = f" ({result.skipped:,} were already there)" if result.skipped else ""
    done = (
        f"Imported {plural(result.added, 'example')} into {plural(labels, 'label')} "
        f"of set {set_shown}{already}."
    )
    working.update(done, blocks=[text.section(done)])


def _read(
    deps: Deps, request: SlackRequest, file: Mapping[str, Any], parse: Callable[..., T], *, so: str
) -> tuple[str, T]:
    """The file's text and what `parse` (`parse_labels`, `parse_text_table`) makes of it; a file
    with a text over GEMBOT_MAX_TEXT_CHARS is refused whole, `so` saying what was not done."""
    name = downloads.file_name(file)
    content = attachments.fetch_text(request.client, file, token=request.token)
    try:
        return content, parse(content, filename=name, max_chars=deps.settings.max_text_chars)
    except TextsTooLong as exc:
        raise InvalidInput(bounds.too_long_rows(exc, so=so)) from None


def _check_size(deps: Deps, name: str, total: int, *, rows_are: str, verb: str, so: str = "") -> None:
    """Refuse a file of more than GEMBOT_MAX_CSV_ROWS rows (`rows_are` names them, `verb` what
    would have been done with them)."""
    cap = deps.settings.max_csv_rows
    if total > cap:
        raise InvalidInput(
            f"{name} has {total:,} {rows_are}; I {verb} at most {cap:,} at a time (GEMBOT_MAX_CSV_ROWS)"
            f"{so}: split it into smaller files"
        )


def batch_size(rows: int) -> int:
    """Rows per batch: at least MIN_BATCH, and few enough batches for MAX_UPDATES progress messages."""
    per_update = math.ceil(rows / MAX_UPDATES)
    return max(MIN_BATCH, math.ceil(per_update / MIN_BATCH) * MIN_BATCH)


def classify_table(deps: Deps, request: SlackRequest, *, file: Mapping[str, Any], set_name: str) -> None:
    """Check the file and the set, store the classification as a job, and run it (see `run_job`)."""
    team, replier = request.workspace, request.replier
    name = downloads.file_name(file)
    shown, set_shown = text.escape(name), f"*{text.escape(set_name)}*"
    working = replier.working(f"Classifying {shown} against set {set_shown}…")
    content, table = _read(deps, request, file, parse_text_table, so="I classified nothing")
    total = len(table.rows)
    _check_size(deps, name, total, rows_are="rows", verb="classify")
    try:
        # Trained (or found) before the job is stored, so a missing set fails at once.
        labels = list(deps.engine.model_for(team, set_name).labels)
    except NotFound:
        raise NotFound(
            f"there is no label set '{set_name}' yet — add examples with `/label add LABEL: TEXT`, or "
            "send me a CSV of `text,label` rows with the word `import`"
        ) from None
    except NotEnoughLabels as exc:
        raise NotEnoughLabels(f"{exc} — add examples with `/label add LABEL: TEXT`") from None
    spec = CsvJob(
        set_name=set_name,
        file_name=name,
        user_id=request.user,
        labels=tuple(labels),
        batch=batch_size(total),
        source=SOURCE,
    )
    job = deps.jobs.create(
        team,
        kind=KIND_CLASSIFY_CSV,
        content=content,
        rows_total=total,
        # Where the answer goes, so that whichever process finishes the job answers in this thread,
        # updating this progress message.
        parameters=spec.parameters() | {REPLY_TO: request.reply_to().to_json(), PROGRESS_TS: working.ts},
    )
    run_job(deps, replier, job, working)


def reply_to_of(job: JobRecord) -> ReplyTo:
    """Where the answers of a stored classification job go (raises UnknownReplyTo when it was
    stored in a format this version cannot read).

    Jobs stored before `ReplyTo` kept loose keys (`channel`, `thread_ts`, `enterprise_id`, the
    user under `user`) beside a workspace key of `TEAM` or `ENTERPRISE:TEAM`: read as they are.
    """
    params = job.parameters
    stored = params.get(REPLY_TO)
    if stored is not None:
        return ReplyTo.from_json(stored)
    enterprise = params.get("enterprise_id") or None
    return ReplyTo(
        channel=str(params.get("channel") or ""),
        user=params.get("user"),
        thread_ts=params.get("thread_ts"),
        team=job.team_id.rsplit(":", 1)[-1] if enterprise else job.team_id,
        enterprise=enterprise,
    )


def resume(deps: Deps, job: JobRecord, *, client: WebClient, logger: logging.Logger | None = None) -> None:
    """Carry on with a classification another process left off (the runtime took it over), in the
    thread it was asked in, updating the same progress message."""
    to = reply_to_of(job)
    replier = Replier(client, to, logger=logger)
    # No Slack request is behind a resumed job: its Gemini calls are charged to whoever asked.
    actor = daily_limits.Actor(job.team_id, CsvJob.of(job.parameters).user_id)
    with replier.reporting_errors(), daily_limits.acting_for(deps.meter, actor):
        ts = job.parameters.get(PROGRESS_TS)
        working = Placeholder(replier, ts=str(ts), channel=to.channel) if ts else replier.working()
        replier.placeholder = working
        _show_progress(working, job, job.rows_done, again=True)
        run_job(deps, replier, job, working)


def run_job(deps: Deps, replier: Replier, job: JobRecord, working: Placeholder) -> None:
    """Classify the job's remaining rows with progress, then upload the annotated CSV and a chart.

    A process that is stopping gives the job back after the current batch and says so; the next
    one carries on from there. A failure marks the job failed and is raised for the replier.
    """
    spec = CsvJob.of(job.parameters)
    name = spec.file_name
    shown, set_shown = text.escape(name), f"*{text.escape(spec.set_name)}*"

    def progress(done: int, total: int) -> None:
        if done < total:
            _show_progress(working, job, done)

    try:
        result = deps.jobs.classify_csv(job, engine=deps.engine, progress=progress)
        counts = _deliver(replier, result, name=name, set_name=spec.set_name)
    except JobInterrupted as stop:
        paused = f"Paused at {stop.rows_done:,} of {stop.rows_total:,} rows of {shown}{paused_because(stop)}."
        working.update_quietly(paused, blocks=[text.context(f":pause_button: {paused}")])
        return
    except LeaseLost:
        replier.log.info("job #%d was taken over by another process", job.id)
        return
    except Exception as exc:
        deps.jobs.fail(job, str(exc) or type(exc).__name__)
        raise
    # Between the upload and this line a crash would have the next process deliver again: the
    # one window where the result may come twice (never where it could be lost).
    deps.jobs.finish(job)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    summary = ", ".join(f"{count:,} {text.escape(label)}" for label, count in ranked[:8])
    more = f" and {len(counts) - 8} more labels" if len(counts) > 8 else ""
    total = len(result.predictions)
    done_text = f"Classified {total:,} rows of {shown} against set {set_shown}: {summary}{more}."
    working.update(
        done_text,
        blocks=[
            text.section(done_text),
            text.context(
                "Below: the CSV with `label`, `best_label`, `confidence` and a score per label, "
                "and a chart of the rows per label."
            ),
        ],
    )


def _deliver(replier: Replier, result: CsvResult, *, name: str, set_name: str) -> Counter[str]:
    """Upload the annotated CSV and the chart into the thread; returns the rows per label."""
    counts = Counter(p.label or NO_LABEL for p in result.predictions)
    stem = re.sub(r"\.csv$", "", name, flags=re.IGNORECASE) or "texts"
    replier.upload(
        annotate_table(result.table, result.predictions, result.labels),
        filename=f"{stem}-classified.csv",
        title=f"{name} classified against {set_name}",
    )
    from core.plots import label_counts_png  # matplotlib: imported when a chart is drawn

    chart = label_counts_png(counts, title=f"{name}: rows per label ({set_name})", unit="rows")
    replier.upload(chart, filename=f"{stem}-labels.png", title=f"Rows per label in {name}")
    return counts


def _show_progress(working: Placeholder, job: JobRecord, done: int, *, again: bool = False) -> None:
    spec = CsvJob.of(job.parameters)
    total = job.rows_total
    verb = "Carrying on with" if again else "Classifying"
    progress = (
        f"{verb} {text.escape(spec.file_name)} against set *{text.escape(spec.set_name)}*: "
        f"{done:,} of {total:,} rows ({done * 100 // max(total, 1)}%)…"
    )
    working.update_quietly(progress, blocks=[text.context(f":hourglass_flowing_sand: {progress}")])


def paused_because(stop: JobInterrupted) -> str:
    """Why a job was given back, to end the sentence saying where it paused."""
    if stop.database_lost:
        return ": I lost my database for a moment, and I'll carry on from there once it is back"
    return " while I restart: I'll carry on from there"
