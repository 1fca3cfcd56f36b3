"""CSV files sent to the bot by DM: `import` adds label examples, `classify` labels a whole table.

`import [set:NAME]` reads `text,label` rows (or a Gembot export) and adds them to the set in one
transaction: a file with a bad row adds nothing. `classify [set:NAME]` reads a CSV with a `text`
column, classifies it in batches while a progress message counts the rows, and answers with the
same CSV plus `label`, `best_label`, `confidence` and one `score:<label>` column per label, and a
bar chart of how many rows went to each label.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk import WebClient

from core.errors import InvalidInput, NotEnoughLabels, NotFound
from core.labels_io import parse_labels
from core.store import ExampleInput
from core.tables import annotate_table, parse_text_table
from handlers import attachments, files, text
from handlers.deps import Deps
from handlers.replies import Replier

log = logging.getLogger(__name__)

Action = Literal["import", "classify"]
DEFAULT_SET = "default"
SOURCE = "slack-csv"
# Rows per classification batch at least, and progress messages per file at most: a big file
# is classified in bigger batches so that chat.update stays well inside Slack's rate limit.
MIN_BATCH = 100
MAX_UPDATES = 20
NO_LABEL = "(no confident label)"

_WORDS = re.compile(r"\b(import|classify)\b", re.IGNORECASE)
_SET = re.compile(r'(?<!\S)set:(?:"([^"]*)"|(\S+))', re.IGNORECASE)

USAGE = (
    "Send me the CSV file with the word `import` to add its `text,label` rows as label examples, "
    "or with the word `classify` to label its `text` column. Add `set:NAME` for a label set other "
    "than `default`."
)
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


def is_bare_request(message: str) -> bool:
    """True for a message that is only `import` or `classify` (and `set:NAME`): it needs a file."""
    rest = _SET.sub(" ", _WORDS.sub(" ", message)).strip(" \t\n.!")
    return bool(_WORDS.search(message)) and not rest


def handle(
    deps: Deps,
    replier: Replier,
    *,
    file: Mapping[str, Any],
    message: str,
    team: str,
    user: str | None,
    client: WebClient,
    token: str,
) -> None:
    """Do what `message` asks of the CSV `file`; run inside `replier.reporting_errors()`."""
    request = parse_request(message)
    name = files.file_name(file)
    if request.ambiguous:
        replier.post(
            f"Should I `import` or `classify` {text.escape(name)}? Send it again with one of the two."
        )
        return
    if request.action is None:
        replier.post(f"I got {text.escape(name)}. {USAGE}")
        return
    if request.action == "import":
        import_examples(
            deps, replier, file=file, set_name=request.set_name, team=team, client=client, token=token
        )
    else:
        classify_table(
            deps,
            replier,
            file=file,
            set_name=request.set_name,
            team=team,
            user=user,
            client=client,
            token=token,
        )


def import_examples(
    deps: Deps,
    replier: Replier,
    *,
    file: Mapping[str, Any],
    set_name: str,
    team: str,
    client: WebClient,
    token: str,
) -> None:
    """Add the file's rows to the set, all or nothing, and say how many went where."""
    name = files.file_name(file)
    set_shown = f"*{text.escape(set_name)}*"
    working = replier.working(f"Importing {text.escape(name)} into set {set_shown}…")
    content = attachments.fetch_text(client, file, token=token)
    rows = parse_labels(content, filename=name)
    items = [ExampleInput(r.label, r.text, author=r.author, source_url=r.source_url) for r in rows]
    result = deps.store.add_examples(team, set_name, items)
    labels = len({r.label for r in rows})
    already = f" ({result.skipped:,} were already there)" if result.skipped else ""
    done = (
        f"Imported {result.added:,} {_plural(result.added, 'example')} into {labels:,} "
        f"{_plural(labels, 'label')} of set {set_shown}{already}."
    )
    working.update(done, blocks=[text.section(done)])


def batch_size(rows: int) -> int:
    """Rows per batch: at least MIN_BATCH, and few enough batches for MAX_UPDATES progress messages."""
    per_update = math.ceil(rows / MAX_UPDATES)
    return max(MIN_BATCH, math.ceil(per_update / MIN_BATCH) * MIN_BATCH)


def classify_table(
    deps: Deps,
    replier: Replier,
    *,
    file: Mapping[str, Any],
    set_name: str,
    team: str,
    user: str | None,
    client: WebClient,
    token: str,
) -> None:
    """Classify the file's `text` column, with progress, and upload the annotated CSV and a chart."""
    name = files.file_name(file)
    shown, set_shown = text.escape(name), f"*{text.escape(set_name)}*"
    working = replier.working(f"Classifying {shown} against set {set_shown}…")
    content = attachments.fetch_text(client, file, token=token)
    table = parse_text_table(content, filename=name)
    total, cap = len(table.rows), deps.settings.max_csv_rows
    if total > cap:
        raise InvalidInput(
            f"{name} has {total:,} rows; I classify at most {cap:,} at a time (GEMBOT_MAX_CSV_ROWS): "
            "split it into smaller files"
        )
    engine = deps.engine
    try:
        # Trained (or found) before the first row, so a missing set fails at once.
        labels = list(engine.model_for(team, set_name).labels)
    except NotFound:
        raise NotFound(
            f"there is no label set '{set_name}' yet — add examples with `/label add LABEL: TEXT`, or "
            "send me a CSV of `text,label` rows with the word `import`"
        ) from None
    except NotEnoughLabels as exc:
        raise NotEnoughLabels(f"{exc} — add examples with `/label add LABEL: TEXT`") from None
    texts = table.texts
    step = batch_size(total)
    predictions = []
    for start in range(0, total, step):
        predictions += engine.classify(
            team, set_name, texts[start : start + step], user_id=user, source=SOURCE
        )
        done = len(predictions)
        if done < total:
            progress = (
                f"Classifying {shown} against set {set_shown}: "
                f"{done:,} of {total:,} rows ({done * 100 // total}%)…"
            )
            working.update(progress, blocks=[text.context(f":hourglass_flowing_sand: {progress}")])
    # A set changed while the file was classified may have brought a label the first model lacked.
    for p in predictions:
        labels += [label for label in p.scores if label not in labels]
    counts = Counter(p.label or NO_LABEL for p in predictions)
    stem = re.sub(r"\.csv$", "", name, flags=re.IGNORECASE) or "texts"
    replier.upload(
        annotate_table(table, predictions, labels),
        filename=f"{stem}-classified.csv",
        title=f"{name} classified against {set_name}",
    )
    from core.plots import label_counts_png  # matplotlib: imported when a chart is drawn

    chart = label_counts_png(counts, title=f"{name}: rows per label ({set_name})", unit="rows")
    replier.upload(chart, filename=f"{stem}-labels.png", title=f"Rows per label in {name}")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    summary = ", ".join(f"{count:,} {text.escape(label)}" for label, count in ranked[:8])
    more = f" and {len(counts) - 8} more labels" if len(counts) > 8 else ""
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


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
