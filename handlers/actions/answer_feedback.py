"""The thumbs under every Gemini answer: Slack's `feedback_buttons` in a `context_actions` block.

When an answer is finished, `feedback_footer` records it (workspace, channel, message, model; not
its text) and returns the block whose buttons carry the answer's id. A press keeps the person's
verdict on that answer, a later press replacing it (`Store.rate_answer`); App Home shows the share
of answers marked good per model (`handlers.events.app_home`).

The id comes back in the payload and is not trusted: an id that is not one of the workspace's
answers (pruned, another workspace's, made up) stores nothing and gets one line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement

from core.errors import GembotError, NotFound
from handlers.acks import acknowledge
from handlers.deps import Deps, deps_of
from handlers.request import SlackRequest
from handlers.text import Block

log = logging.getLogger(__name__)

ACTION_ID = "answer_feedback"
BLOCK_PREFIX = "answer_feedback:"
GOOD, BAD = "good", "bad"
#: A button's value: the verdict and the answer's id, e.g. `good:42`.
VALUE = re.compile(rf"^({GOOD}|{BAD}):(\d{{1,18}})$")
THANKS = {GOOD: "Thanks for the feedback: glad it helped.", BAD: "Thanks for the feedback: noted."}
GONE = (
    ":warning: That answer is no longer on record (answers are kept for "
    "GEMBOT_CONVERSATION_RETENTION_DAYS), so the feedback was not stored."
)


def feedback_block(answer_id: int) -> Block:
    """The `context_actions` block of feedback buttons for answer `answer_id` (Good / Not good)."""

    def button(verdict: str, shown: str, spoken: str) -> FeedbackButtonObject:
        return FeedbackButtonObject(text=shown, accessibility_label=spoken, value=f"{verdict}:{answer_id}")

    buttons = FeedbackButtonsElement(
        action_id=ACTION_ID,
        positive_button=button(GOOD, "Good", "Mark this answer as good"),
        negative_button=button(BAD, "Not good", "Mark this answer as not good"),
    )
    block: Block = ContextActionsBlock(block_id=f"{BLOCK_PREFIX}{answer_id}", elements=[buttons]).to_dict()
    return block


def feedback_footer(
    deps: Deps, request: SlackRequest, *, channel: str | None, ts: str | None, model: str
) -> list[Block]:
    """Record the answer (written by `model`, ending in message `ts` of `channel`) and return the
    blocks to put last in its footer: the feedback buttons. Nothing when it cannot be recorded (the
    database away): the answer is worth showing without them."""
    where = channel or request.channel
    try:
        answer_id = deps.store.record_answer(request.workspace, where, message_ts=ts, model=model)
    except GembotError as exc:
        log.warning("could not record an answer in %s, so it has no feedback buttons: %s", where, exc)
        return []
    return [feedback_block(answer_id)]


def register(app: App) -> None:
    """A press is acknowledged at once; the verdict is stored by a lazy listener."""
    app.action(ACTION_ID)(ack=acknowledge, lazy=[store_feedback])


def store_feedback(body: dict[str, Any], context: BoltContext) -> None:
    """Keep the presser's verdict on the answer the button names, and thank them privately."""
    deps, request = deps_of(context), SlackRequest.of_action(body, context)
    replier = request.replier
    with replier.reporting_errors():
        action = (body.get("actions") or [{}])[0]
        found = VALUE.match(str(action.get("value") or ""))
        if found is None or not request.user:
            replier.ephemeral(":warning: That button no longer works.")
            return
        verdict, answer_id = found.group(1), int(found.group(2))
        try:
            deps.store.rate_answer(request.workspace, answer_id, request.user, good=verdict == GOOD)
        except NotFound:
            replier.ephemeral(GONE)
            return
        replier.ephemeral(THANKS[verdict])
