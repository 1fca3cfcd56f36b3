"""`/classify TEXT` or `/classify set:NAME TEXT`: the label, its confidence in words and the closest
labels, with buttons to confirm it or pick another; a "not sure" answer offers its nearest labels as
buttons (see `handlers.actions.classify_feedback`)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from core.classify import Prediction
from core.errors import GembotError
from handlers import bounds, confidence_words, label_sets, text
from handlers.actions.classify_feedback import feedback_blocks
from handlers.deps import Deps
from handlers.label_sets import bold, mention
from handlers.replies import Replier, Where
from handlers.scope import workspace_of
from handlers.text import Block

USAGE = (
    "Usage: `/classify TEXT` or `/classify set:NAME TEXT`, for example "
    "`/classify I was charged twice this month`."
)
#: How many labels the answer lists with their cosine similarity.
TOP_SCORES = 3
#: The method of a prediction Gemini made when the embeddings were not sure (`Engine.classify`).
GEMINI = "gemini"
SOURCE = "slack"

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    """`/classify`: checked and acknowledged at once; embedding and classifying run after the ack."""

    def too_long(rest: str) -> str | None:
        return bounds.too_long(text.plain(rest).strip(), deps.settings.max_text_chars)

    def acknowledge(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        scoped = label_sets.take_set(command.get("text") or "")
        if not scoped.rest:
            ack(text=USAGE, response_type="ephemeral")
            return
        if refusal := too_long(scoped.rest):
            ack(text=refusal, response_type="ephemeral")
            return
        try:
            problem = label_sets.set_problem(
                deps.store, workspace_of(context), scoped.set_name, command="/classify"
            )
        except GembotError as exc:
            # The database did not answer in time for the ack: the lazy listener will say so. One
            # line: while the database is down every request comes through here.
            log.warning("could not check the label set in the ack: %s", exc)
            problem = None
        except Exception:
            log.exception("unexpected failure while checking the label set in the ack")
            problem = None
        if problem:
            ack(text=problem, response_type="ephemeral")
        else:
            ack()

    def answer(
        command: dict[str, Any], context: BoltContext, client: WebClient, logger: logging.Logger
    ) -> None:
        scoped = label_sets.take_set(command.get("text") or "")
        team = workspace_of(context)
        replier = Replier(client, Where.of_command(command), logger=logger)
        with replier.reporting_errors():
            if (
                not scoped.rest
                or too_long(scoped.rest)
                or label_sets.set_problem(deps.store, team, scoped.set_name, command="/classify")
            ):
                return  # already answered by the ack
            set_name = scoped.set_or_default()
            content = text.plain(scoped.rest).strip()
            asked = [
                text.context(
                    f"{mention(command.get('user_id'))} asked to classify, with set {bold(set_name)}:"
                ),
                text.section(label_sets.quote(content)),
            ]
            working = replier.working("Classifying…", header=asked)
            (prediction,) = deps.engine.classify(team, set_name, [content], log=False)
            classification_id = deps.store.log_classification(
                team_id=team,
                set_name=set_name,
                user_id=command.get("user_id"),
                source=SOURCE,
                text=content,
                label=prediction.label,
                confidence=prediction.confidence,
                method=prediction.method,
                scores=prediction.scores,
            )
            blocks = [*asked, *result_blocks(prediction), *feedback_blocks(classification_id, prediction)]
            working.update(summary(prediction), blocks=blocks)

    app.command("/classify")(ack=acknowledge, lazy=[answer])


def summary(prediction: Prediction) -> str:
    """The notification text of an answer."""
    if prediction.label is None:
        return f"No confident label (closest: {text.neutralise(prediction.best_label)})"
    if prediction.method == GEMINI:
        return f"{text.neutralise(prediction.label)} (chosen by Gemini)"
    said, percent = confidence_words.stated(prediction.confidence)
    return f"{said}: {text.neutralise(prediction.label)} ({percent})"


def result_blocks(prediction: Prediction) -> list[Block]:
    """The label and its confidence in words, "likely: *billing* (72%)" (or why there is none; or
    that Gemini chose it, and why it was asked), then the closest labels' cosines."""
    decided: list[Block] = []
    if prediction.method == GEMINI and prediction.label is not None:
        headline = f":label: {bold(prediction.label)} — chosen by Gemini"
        # The engine's reason names why the embeddings were not sure.
        why = text.neutralise(prediction.reason or "the examples alone left Gembot unsure")
        decided = [text.context(f":sparkles: Decided by Gemini: {why}.")]
    elif prediction.label is not None:
        said, percent = confidence_words.stated(prediction.confidence)
        headline = f":label: {said}: {bold(prediction.label)} ({percent})"
    else:
        reason = text.neutralise(prediction.reason or "the model is unsure")
        headline = (
            f":grey_question: *No confident label*: {reason}. Nearest label: {bold(prediction.best_label)}."
        )
    top = list(prediction.scores.items())[:TOP_SCORES]
    scores = " · ".join(f"{bold(label)} {cosine:.2f}" for label, cosine in top)
    return [
        text.section(headline),
        *decided,
        text.context(f"Closest labels (cosine similarity): {scores} · method: {prediction.method}"),
    ]
