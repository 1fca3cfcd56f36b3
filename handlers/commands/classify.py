"""`/classify TEXT` or `/classify set:NAME TEXT`: the label, its confidence in words and the closest
labels, with buttons to confirm it or pick another; a "not sure" answer offers its nearest labels as
buttons (see `handlers.actions.classify_feedback`).

The ack checks the text and the label set and refuses privately what cannot be classified. The
lazy listener, which Bolt starts at the same time on another thread, trusts that check rather
than reading the set again: the ack hands its verdict over (`AckVerdicts`, by the command's
`trigger_id`), and only when the ack could not check (the database did not answer in time) does
the lazy listener check for itself. The engine then reads the set once more, as it must to find
its model; a set removed in between is the engine's own NotFound.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NoVerdict
from typing import Any

from slack_bolt import Ack, App, BoltContext

from core import daily_limits
from core.classify import Prediction
from core.errors import GembotError
from handlers import bounds, confidence_words, label_sets, text
from handlers.acks import acknowledge_or_refuse
from handlers.actions.classify_feedback import feedback_blocks
from handlers.deps import Deps, deps_of
from handlers.label_sets import bold, mention
from handlers.request import SlackRequest
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


class AckVerdicts:
    """What each /classify's ack found about its label set, for its lazy listener: True (refused,
    and the user told why), False (it can classify), None (the ack could not check).

    Kept by the command's `trigger_id` until the lazy listener takes it; at most `kept` verdicts
    nobody took are remembered (the oldest are forgotten first).
    """

    def __init__(self, *, wait: float = 3.0, kept: int = 1_000) -> None:
        self.wait = wait
        self.kept = kept
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[str, Future[bool | None]] = OrderedDict()

    def tell(self, request_id: str, refused: bool | None) -> None:
        """The ack's verdict on the request `request_id` (its `trigger_id`)."""
        self._slot(request_id).set_result(refused)

    def take(self, request_id: str) -> bool | None:
        """The ack's verdict, waiting up to `wait` seconds for it; None when it could not check
        or said nothing in time (the ack's own 3 seconds)."""
        try:
            return self._slot(request_id).result(timeout=self.wait)
        except NoVerdict:
            return None
        finally:
            with self._lock:
                self._verdicts.pop(request_id, None)

    def _slot(self, request_id: str) -> Future[bool | None]:
        with self._lock:
            found = self._verdicts.get(request_id)
            if found is None:
                found = self._verdicts[request_id] = Future()
                while len(self._verdicts) > self.kept:
                    self._verdicts.popitem(last=False)
            return found


_verdicts = AckVerdicts()


def register(app: App) -> None:
    """`/classify`: checked and acknowledged at once; embedding and classifying run after the ack."""
    app.command("/classify")(ack=acknowledge_classify, lazy=[answer_classify])


def _scoped(deps: Deps, command: dict[str, Any]) -> tuple[label_sets.Scoped, str | None]:
    """The command's set and text, and the sentence refusing the text (usage, too long), if any."""
    scoped = label_sets.take_set(command.get("text") or "")
    if not scoped.rest:
        return scoped, USAGE
    return scoped, bounds.too_long(text.plain(scoped.rest).strip(), deps.settings.max_text_chars)


def acknowledge_classify(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Refuse privately, in the ack, a text that cannot be classified or a set that cannot classify."""
    deps, request = deps_of(context), SlackRequest.of_command(command, context)
    scoped, refusal = _scoped(deps, command)
    if refusal:
        acknowledge_or_refuse(ack, refusal)
        return
    checked = True
    try:
        problem = label_sets.set_problem(deps.store, request.workspace, scoped.set_name, command="/classify")
    except GembotError as exc:
        # The database did not answer in time for the ack: the lazy listener will say so. One
        # line: while the database is down every request comes through here.
        log.warning("could not check the label set in the ack: %s", exc)
        problem, checked = None, False
    except Exception:
        log.exception("unexpected failure while checking the label set in the ack")
        problem, checked = None, False
    if command.get("trigger_id"):
        _verdicts.tell(str(command["trigger_id"]), bool(problem) if checked else None)
    acknowledge_or_refuse(ack, problem)


def answer_classify(command: dict[str, Any], context: BoltContext) -> None:
    """Classify the text (charged to the requester) and answer with the label and its buttons."""
    deps, request = deps_of(context), SlackRequest.of_command(command, context)
    scoped, refusal = _scoped(deps, command)
    team, replier = request.workspace, request.replier
    if refusal:
        return  # already answered by the ack
    refused = _verdicts.take(str(command["trigger_id"])) if command.get("trigger_id") else None
    if refused:
        return  # already answered by the ack
    with daily_limits.acting_for(deps.meter, request.actor), replier.reporting_errors():
        if refused is None and label_sets.set_problem(deps.store, team, scoped.set_name, command="/classify"):
            return  # the ack could not check the set: said here, as the ack would have
        set_name = scoped.set_or_default()
        content = text.plain(scoped.rest).strip()
        asked = [
            text.context(f"{mention(request.user)} asked to classify, with set {bold(set_name)}:"),
            text.section(label_sets.quote(content)),
        ]
        working = replier.working("Classifying…", header=asked)
        (prediction,) = deps.engine.classify(team, set_name, [content], log=False)
        classification_id = deps.store.log_classification(
            team_id=team,
            set_name=set_name,
            user_id=request.user,
            source=SOURCE,
            text=content,
            label=prediction.label,
            confidence=prediction.confidence,
            method=prediction.method,
            scores=prediction.scores,
        )
        blocks = [*asked, *result_blocks(prediction), *feedback_blocks(classification_id, prediction)]
        working.update(summary(prediction), blocks=blocks)


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
