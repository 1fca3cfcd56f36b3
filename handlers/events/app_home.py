"""App Home: the workspace's label sets, their label and example counts and latest evaluation
(accuracy, and coverage: how often the set answers rather than saying "not sure"), whether each is
tuned and has a re-tune pending, how people rated Gemini's answers per model over the last
RATINGS_DAYS days (the feedback buttons of `handlers.actions.answer_feedback`), and how to use the
bot; published (`views.publish`) whenever a user opens the Home tab."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk.errors import SlackApiError

from core.store import EvaluationRecord, ModelRating, SetSummary, Store, TunedEncoderInfo, TuneJob
from handlers import label_sets, text, tune_notices
from handlers.acks import acknowledge
from handlers.deps import deps_of
from handlers.label_sets import bold
from handlers.request import SlackRequest
from handlers.text import Block, plural

#: A Home view holds at most 100 blocks: beyond this many sets, `/label sets` lists them all.
MAX_SETS = 30
LABELS_SHOWN = 600
#: The window of answers whose feedback App Home counts, and how many models it lists.
RATINGS_DAYS = 30
MAX_MODELS = 20
RATINGS_MEANING = (
    f"Over the last {RATINGS_DAYS} days, per model: of the answers someone pressed *Good* or *Not good* "
    "under, how many were marked good (more of the people who rated the answer said *Good* than "
    "*Not good*). Answers nobody rated are not counted."
)
NO_RATINGS = (
    f"No feedback on answers in the last {RATINGS_DAYS} days yet: press *Good* or *Not good* under "
    "an answer of `/ask` or of a mention."
)

HOW_TO = "\n".join(
    [
        "• `/classify TEXT` — the label of a text (`/classify set:NAME TEXT` for another set); "
        "*Correct* and *Wrong label…* under the answer teach the set; when it is not sure, "
        "press the label the text belongs to.",
        "• `/label add LABEL: TEXT` — add an example; `/label list`, `/label remove ID`, `/label sets`.",
        "• *Add as label example* — the shortcut on any message (⋮ → the message's shortcuts).",
        "• `/label eval` — how well a set classifies its own examples, with a confusion matrix; "
        "`/label export` — the set as a CSV file; `/label tune NAME` — tune the set's own model.",
        "• `/similar` and `/cluster` — compare or group texts, one per line; `/ask` — ask Gemini.",
        "• DM me a CSV with `run: PROMPT using {column}` (and `models: a, b`) — run a prompt over "
        "every row on each model, with a comparison table and a chart.",
    ]
)


def register(app: App) -> None:
    """`app_home_opened` on the Home tab: acknowledged, then the view is built and published."""
    app.event("app_home_opened")(ack=acknowledge, lazy=[publish_home])


def publish_home(event: dict[str, Any], context: BoltContext) -> None:
    """Build the Home tab from the workspace's label sets and publish it for the user."""
    if event.get("tab", "home") != "home" or not event.get("user"):
        return  # the Messages tab: nothing to publish
    deps, request = deps_of(context), SlackRequest.of_event(event, context, in_thread=False)
    team, logger, store = request.workspace, request.logger, deps.store
    answers = ratings_blocks(_ratings(store, team, logger))
    try:
        sets = store.list_sets(team)
        # One small read per set shown (no bulk read of tuned encoders yet).
        # Only weights the engine classifies with: a tune for another embedder is ignored.
        tuned = {
            s.name: found
            for s in sets[:MAX_SETS]
            if (found := store.tuned_encoder(team, s.name)) and deps.engine.serves(found)
        }
        jobs = {job.set_name: job for job in store.tune_jobs(team)}
        view = home_view(
            team, sets, store.latest_evaluations(team), tuned=tuned, tune_jobs=jobs, answers=answers
        )
    except Exception:
        logger.exception("could not read the label sets for App Home")
        view = home_view(team, [], {}, problem=True, answers=answers)
    try:
        request.client.views_publish(user_id=event["user"], view=view)
    except SlackApiError as exc:
        logger.warning("could not publish App Home: %s", exc.response.get("error"))


def home_view(
    team: str,
    sets: list[SetSummary],
    evaluations: dict[str, EvaluationRecord],
    *,
    tuned: dict[str, TunedEncoderInfo] | None = None,
    tune_jobs: dict[str, TuneJob] | None = None,
    problem: bool = False,
    answers: list[Block] | None = None,
) -> dict[str, Any]:
    """The Home tab for a workspace with `sets`, their latest `evaluations`, their `tuned`
    encoders and pending `tune_jobs` (each by set name), and the `answers` part (`ratings_blocks`)
    between the sets and the how-to."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Gembot"}},
        text.section("Sort texts into your team's own labels, find related messages, and ask Gemini."),
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Label sets"}},
    ]
    if problem:
        blocks.append(text.section(":warning: The label sets could not be read just now; reopen this tab."))
    elif not sets:
        blocks.append(
            text.section(
                "No label sets yet. Start one by adding examples: `/label add LABEL: TEXT`, or the "
                "*Add as label example* shortcut on any message. Two labels with a few examples "
                "each are enough for `/classify`."
            )
        )
    for summary in sets[:MAX_SETS]:
        tuned_line = tune_notices.home_line(
            (tuned or {}).get(summary.name), (tune_jobs or {}).get(summary.name)
        )
        blocks.extend(_set_blocks(summary, evaluations.get(summary.name), tuned_line))
    if len(sets) > MAX_SETS:
        blocks.append(text.context(f"…and {len(sets) - MAX_SETS} more: `/label sets` lists them all."))
    blocks += answers or []
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "How to"}},
        text.section(HOW_TO),
        text.context(
            f"Workspace (team) id `{text.escape(team)}`: the command line reaches these sets with "
            f"`--team {text.escape(team)}`."
        ),
    ]
    return {"type": "home", "blocks": blocks}


def _ratings(store: Store, team: str, logger: logging.Logger) -> list[ModelRating] | None:
    """The workspace's answer ratings of the last RATINGS_DAYS days; None when they cannot be read
    (the label sets may still be shown)."""
    try:
        return store.answer_ratings(team, since=datetime.now(UTC) - timedelta(days=RATINGS_DAYS))
    except Exception:
        logger.exception("could not read the answer ratings for App Home")
        return None


def ratings_blocks(ratings: list[ModelRating] | None) -> list[Block]:
    """The "Answers" part of the Home tab: per model, the share of its rated answers marked good
    (`rating_line`), and what that share counts."""
    blocks: list[Block] = [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Answers"}},
    ]
    if ratings is None:
        return [
            *blocks,
            text.section(":warning: The answer ratings could not be read just now; reopen this tab."),
        ]
    if not ratings:
        return [*blocks, text.context(NO_RATINGS)]
    ranked = sorted(ratings, key=lambda r: (-r.rated, r.model))
    lines = [rating_line(r) for r in ranked[:MAX_MODELS]]
    if len(ranked) > MAX_MODELS:
        lines.append(f"…and {len(ranked) - MAX_MODELS} more models.")
    return [*blocks, text.section("\n".join(lines)), text.context(RATINGS_MEANING)]


def rating_line(rating: ModelRating) -> str:
    """One model's line, e.g. "gemini-2.5-flash: 12 of 15 answers marked good (80%)"."""
    answers = "answer" if rating.rated == 1 else "answers"
    return (
        f"`{text.escape(rating.model)}`: {rating.good} of {rating.rated} {answers} marked good "
        f"({rating.share:.0%})"
    )


def _set_blocks(summary: SetSummary, latest: EvaluationRecord | None, tuned_line: str = "") -> list[Block]:
    labels = label_sets.labelled(summary)
    counts = " · ".join(
        f"{text.neutralise(label_sets.shorten(label, 40))} {n}" for label, n in summary.label_counts.items()
    )
    if len(counts) > LABELS_SHOWN:
        counts = counts[:LABELS_SHOWN].rsplit(" · ", 1)[0] + " · …"
    size = f"{plural(len(labels), 'label')}, {plural(label_sets.examples_count(summary), 'example')}"
    if latest is None:
        evaluated = f"Not evaluated yet: `/label eval {text.escape(label_sets.set_token(summary.name))}`"
    else:
        stale = "" if latest.set_version == summary.version else " (the set has changed since)"
        evaluated = (
            f"Latest evaluation: *{latest.accuracy:.0%}* accuracy on {latest.n} examples · "
            f"{latest.method} · {latest.strategy} · {_when(latest.created_at)}{stale}\n"
            f"{coverage_line(latest)}"
        )
    if tuned_line:
        evaluated += "\n" + tuned_line
    return [text.section(f"{bold(summary.name)} — {size}\n{counts}"), text.context(evaluated)]


def coverage_line(latest: EvaluationRecord) -> str:
    """How often the set answers its own kind of text (its held-out examples) rather than saying
    "not sure", and how often it is right then; the accuracy above counts "not sure" as a miss."""
    if latest.coverage <= 0:
        return "Coverage: *0%* — at its thresholds it is not sure of any of its held-out examples"
    line = f"Coverage: answers *{latest.coverage:.0%}* of its held-out examples (not sure of the rest)"
    if latest.answered_accuracy is not None:
        line += f", right on *{latest.answered_accuracy:.0%}* of those"
    if latest.ece is not None:
        # The gap between what its confidence says and how often it is right, on average.
        line += f"; its stated confidence is off by *{latest.ece:.0%}* on average (ECE)"
    return line


def _when(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone (`<!date^…>`), with a UTC fallback."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{aware:%Y-%m-%d %H:%M} UTC>"
