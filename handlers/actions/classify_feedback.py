"""The buttons under a `/classify` answer: **Correct** and **Wrong label…** store the classified text
as an example of the chosen label, so the label set gets better with use.

The buttons carry no text (a button value holds 2,000 characters, a text may hold more): the
actions block's `block_id` carries the classification log id, and the text is read back from
the log. The label travels in the button's or option's value (`label_sets.option_value`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.classify import Prediction
from core.errors import NotFound
from core.store import ExampleInput
from handlers import label_sets, text
from handlers.acks import acknowledge
from handlers.deps import Deps
from handlers.label_sets import bold, mention, option, option_value
from handlers.replies import CANNOT_WRITE, Placeholder, Replier, Where, slack_error_code
from handlers.scope import workspace_of
from handlers.text import Block

CORRECT = "classify_correct"
RELABEL = "classify_relabel"
BLOCK_PREFIX = "classify_feedback:"
#: A static_select shows at most 100 options: the labels closest to the text come first.
MAX_OPTIONS = 100


def feedback_block(classification_id: int, prediction: Prediction) -> Block:
    """The actions block for one classification: confirm the label, or pick another one.

    When the model abstained, the button offers its closest label instead ("It's X").
    """
    confirmed = prediction.label if prediction.label is not None else prediction.best_label
    # Labels by closeness to the text, so the likely alternatives are at the top of the picker.
    others = [label for label in prediction.scores if label != confirmed][:MAX_OPTIONS]
    button_text = "Correct" if prediction.label is not None else f"It's {confirmed}"
    elements: list[Block] = [
        {
            "type": "button",
            "action_id": CORRECT,
            "text": {"type": "plain_text", "text": label_sets.shorten(button_text, 75), "emoji": False},
            "style": "primary",
            "value": option_value(confirmed),
        }
    ]
    if others:
        elements.append(
            {
                "type": "static_select",
                "action_id": RELABEL,
                "placeholder": {
                    "type": "plain_text",
                    "text": "Wrong label…" if prediction.label is not None else "Another label…",
                },
                "options": [option(label) for label in others],
            }
        )
    return {"type": "actions", "block_id": f"{BLOCK_PREFIX}{classification_id}", "elements": elements}


def register(app: App, deps: Deps) -> None:
    """Both controls are acknowledged at once; the example is stored by a lazy listener."""

    def store_example(
        body: dict[str, Any], context: BoltContext, client: WebClient, logger: logging.Logger
    ) -> None:
        replier = Replier(client, Where.of_action(body), logger=logger)
        with replier.reporting_errors():
            _store_example(deps, replier, body, workspace_of(context))

    app.action(CORRECT)(ack=acknowledge, lazy=[store_example])
    app.action(RELABEL)(ack=acknowledge, lazy=[store_example])


def _store_example(deps: Deps, replier: Replier, body: Mapping[str, Any], team: str) -> None:
    action = (body.get("actions") or [{}])[0]
    block_id = str(action.get("block_id") or "")
    value = action.get("value") or (action.get("selected_option") or {}).get("value")
    number = block_id.removeprefix(BLOCK_PREFIX)
    if not block_id.startswith(BLOCK_PREFIX) or not number.isdigit() or not value:
        replier.ephemeral(":warning: That button no longer works; classify the text again with /classify.")
        return
    user = replier.where.user
    refusal = deps.rights.curation_refusal(replier.client, team, user)
    if refusal:
        replier.ephemeral(f":no_entry: {refusal}")
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
    ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
    link = label_sets.permalink(replier.client, replier.where.channel, ts)
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
    kept = [b for b in message.get("blocks") or [] if b.get("block_id") != block_id]
    blocks = [*kept, text.context(note)][: text.MAX_BLOCKS]
    _replace(replier, ts, text.fallback(f"{message.get('text') or ''} {note}".strip()), blocks)


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
    if ts and replier.where.channel:
        try:
            Placeholder(replier, ts=ts, channel=replier.where.channel).update(message, blocks=blocks)
            return
        except SlackApiError as exc:
            if slack_error_code(exc) not in (*CANNOT_WRITE, "message_not_found") or not (
                replier.where.response_url
            ):
                raise
    Placeholder(replier, ts=None, channel=replier.where.channel).update(message, blocks=blocks)
