"""The buttons under a `/classify` answer: **Correct** and **Wrong label…** store the classified text
as an example of the chosen label, so the label set gets better with use. Under a "not sure"
answer the nearest labels are buttons of their own ("Which is it?"), with **Another label…** for
the rest; pressing one stores the text as an example of that label, as **Wrong label…** does.

The buttons carry no text (a button value holds 2,000 characters, a text may hold more): the
actions block's `block_id` carries the classification log id, and the text is read back from
the log. The label travels in the button's or option's value (`label_sets.option_value`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk.errors import SlackApiError

from core.classify import Prediction
from core.errors import NotFound
from core.store import ExampleInput
from handlers import label_sets, text
from handlers.acks import acknowledge
from handlers.deps import Deps, deps_of
from handlers.label_sets import bold, mention, option, option_value
from handlers.replies import CANNOT_WRITE, Placeholder, Replier, slack_error_code
from handlers.request import SlackRequest
from handlers.text import Block

CORRECT = "classify_correct"
RELABEL = "classify_relabel"
#: The nearest-label buttons of a "not sure" answer: `classify_pick_1`, `classify_pick_2`, ...
#: (Slack wants the action ids of one block distinct).
PICK = "classify_pick_"
PICKED = re.compile(rf"^{PICK}\d+$")
BLOCK_PREFIX = "classify_feedback:"
#: The "Which is it?" line over the nearest-label buttons; it goes with them once one is pressed.
ASK_PREFIX = "classify_ask:"
#: A static_select shows at most 100 options: the labels closest to the text come first.
MAX_OPTIONS = 100
#: How many of the nearest labels a "not sure" answer offers as buttons.
NEAREST_BUTTONS = 3
#: Slack caps a button's text at 75 characters.
BUTTON_TEXT_LIMIT = 75
WHICH_IS_IT = (
    ":point_down: Which is it? Press the label this text belongs to, and the set learns it as an example."
)


def feedback_blocks(classification_id: int, prediction: Prediction) -> list[Block]:
    """The controls under one classification.

    An answer gets **Correct** and a **Wrong label…** picker; a "not sure" answer gets a "Which is
    it?" line and a button for each of its `NEAREST_BUTTONS` nearest labels (the most probable one
    first, then by cosine), with **Another label…** for the rest. Every control stores the text as
    an example of its label (`register`); the blocks carry the classification log id, not the text.
    """
    block_id = f"{BLOCK_PREFIX}{classification_id}"
    if prediction.label is not None:
        return [_answered_block(block_id, prediction.label, prediction)]
    nearest = nearest_labels(prediction)
    elements: list[Block] = [
        _button(f"{PICK}{rank}", label, label) for rank, label in enumerate(nearest[:NEAREST_BUTTONS], 1)
    ]
    if rest := nearest[NEAREST_BUTTONS:][:MAX_OPTIONS]:
        elements.append(_picker("Another label…", rest))
    return [
        {**text.context(WHICH_IS_IT), "block_id": f"{ASK_PREFIX}{classification_id}"},
        {"type": "actions", "block_id": block_id, "elements": elements},
    ]


def nearest_labels(prediction: Prediction) -> list[str]:
    """The labels nearest to the text: the most probable one (the answer's "nearest label"), then
    the others by cosine to their centroid."""
    return [prediction.best_label, *(label for label in prediction.scores if label != prediction.best_label)]


def _answered_block(block_id: str, label: str, prediction: Prediction) -> Block:
    # Labels by closeness to the text, so the likely alternatives are at the top of the picker.
    others = [other for other in prediction.scores if other != label][:MAX_OPTIONS]
    elements: list[Block] = [{**_button(CORRECT, "Correct", label), "style": "primary"}]
    if others:
        elements.append(_picker("Wrong label…", others))
    return {"type": "actions", "block_id": block_id, "elements": elements}


def _button(action_id: str, shown: str, label: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {
            "type": "plain_text",
            "text": label_sets.shorten(shown, BUTTON_TEXT_LIMIT),
            "emoji": False,
        },
        "value": option_value(label),
    }


def _picker(placeholder: str, labels: list[str]) -> Block:
    return {
        "type": "static_select",
        "action_id": RELABEL,
        "placeholder": {"type": "plain_text", "text": placeholder},
        "options": [option(label) for label in labels],
    }


def register(app: App) -> None:
    """Every control is acknowledged at once; the example is stored by a lazy listener."""
    # CORRECT also serves the "It's X" button that "not sure" answers carried before the
    # nearest-label buttons: messages already in channels keep working.
    for action_id in (CORRECT, RELABEL, PICKED):
        app.action(action_id)(ack=acknowledge, lazy=[store_feedback])


def store_feedback(body: dict[str, Any], context: BoltContext) -> None:
    """Store the classified text as an example of the label pressed, and take the controls away."""
    deps, request = deps_of(context), SlackRequest.of_action(body, context)
    with request.replier.reporting_errors():
        _store_example(deps, request, body)


def _store_example(deps: Deps, request: SlackRequest, body: Mapping[str, Any]) -> None:
    replier, team = request.replier, request.workspace
    action = (body.get("actions") or [{}])[0]
    block_id = str(action.get("block_id") or "")
    value = action.get("value") or (action.get("selected_option") or {}).get("value")
    number = block_id.removeprefix(BLOCK_PREFIX)
    if not block_id.startswith(BLOCK_PREFIX) or not number.isdigit() or not value:
        replier.ephemeral(":warning: That button no longer works; classify the text again with /classify.")
        return
    user = request.user
    if label_sets.curation_refused(deps, request):
        return
    classification_id = int(number)
    try:
        record = deps.store.get_classification(team, classification_id)
    except NotFound:
        replier.ephemeral(
            ":warning: That classification is no longer on record; add the text with "
            "`/label add LABEL: TEXT` instead."
        )
        return
    label = _label(deps, team, record.set_name, str(value))
    if label is None:
        replier.ephemeral(
            f":warning: That label is no longer in set {bold(record.set_name)}; see `/label sets`."
        )
        return
    message = body.get("message") or {}
    link = label_sets.permalink(request.client, request.channel, request.message_ts)
    result = deps.store.add_examples(
        team,
        record.set_name,
        [ExampleInput(label, record.text, author=user, source_url=link)],
        actor=user,
        added_by=user,
    )
    if result.added:
        note = f":white_check_mark: Added as an example of {bold(label)} by {mention(user)}."
    else:
        note = f":white_check_mark: {bold(label)} already had this text as an example ({mention(user)})."
    # The controls go, and the "Which is it?" line over them; the rest of the answer stays.
    gone = {block_id, ASK_PREFIX + number}
    kept = [b for b in message.get("blocks") or [] if b.get("block_id") not in gone]
    blocks = [*kept, text.context(note)][: text.MAX_BLOCKS]
    _replace(
        replier, request.message_ts, text.fallback(f"{message.get('text') or ''} {note}".strip()), blocks
    )


def _label(deps: Deps, team: str, set_name: str, value: str) -> str | None:
    if not value.startswith("sha:"):
        return value
    # A label name too long for a value travelled as a hash: find it among the set's labels.
    try:
        summary = deps.store.get_set(team, set_name)
    except NotFound:
        return None
    return label_sets.from_option(value, list(summary.label_counts))


def _replace(replier: Replier, ts: str | None, message: str, blocks: list[Block]) -> None:
    """Update the answer in place: by chat.update when the bot can, else through the response_url
    (an answer the bot posted that way, in a channel it is not in)."""
    if ts and replier.to.channel:
        try:
            Placeholder(replier, ts=ts, channel=replier.to.channel).update(message, blocks=blocks)
            return
        except SlackApiError as exc:
            if slack_error_code(exc) not in (*CANNOT_WRITE, "message_not_found") or not (
                replier.to.response_url
            ):
                raise
    Placeholder(replier, ts=None, channel=replier.to.channel).update(message, blocks=blocks)
