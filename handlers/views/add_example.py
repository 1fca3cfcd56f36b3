"""The "Add as label example" modal: pick (or name) a label set and a label for a message's text.

`build_view` makes the modal the shortcut (`handlers.shortcuts.add_from_message`) opens. Choosing a set
refreshes the label picker with that set's labels (`dispatch_action`, then `views.update`); what
was typed is kept, as Slack keeps input blocks whose ids do not change. On submission the choices
are checked in the ack (mistakes shown in the modal), and the example is stored after it, with
the message's author and permalink; the user is told privately in the channel, else by DM.

The message's text, author, channel, ts and the shortcut's response_url travel in the view's
`private_metadata` (3,000 characters at most): a text too long for it is cut, and the modal says so.
A message longer than GEMBOT_MAX_TEXT_CHARS is refused instead (`message_too_long`): the shortcut says so
privately and opens no modal, and a submission is checked again (the bound may have been lowered
while the modal was open), the user told privately and nothing stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk.errors import SlackApiError, SlackClientError

from core.errors import GembotError
from core.store import ExampleInput, SetSummary, Store
from core.store import validation as checks
from handlers import bounds, label_sets, text
from handlers.acks import acknowledge
from handlers.deps import deps_of
from handlers.label_sets import bold, option
from handlers.replies import Replier, describe_error
from handlers.request import SlackRequest
from handlers.text import Block

CALLBACK_ID = "add_label_example_modal"
SET_CHANGED = "add_example_set"
SET_PICK = "set_pick"
SET_NEW = "set_new"
LABEL_PICK = "label_pick"
LABEL_NEW = "label_new"
METADATA_LIMIT = 3_000
PREVIEW = 1_200
#: A static_select holds at most 100 options.
MAX_OPTIONS = 100


def message_too_long(content: str, limit: int) -> str | None:
    """The sentence refusing a message of more than `limit` characters as an example, else None.

    Measure the text as it is stored (`text.plain`). The message is someone's as it stands,
    so the way out is to add the part that matters by hand.
    """
    return bounds.too_long(
        content,
        limit,
        what="That message",
        allowed="a label example may have at most",
        fix="add the part that matters with `/label add LABEL: TEXT`",
    )


@dataclass(frozen=True)
class Origin:
    """The message being added, as kept in the modal's private_metadata."""

    text: str
    author: str | None
    channel: str | None
    ts: str | None
    response_url: str | None
    cut: bool = False

    def metadata(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, raw: str) -> Origin:
        try:
            data = json.loads(raw or "{}")
            fields = {k: data.get(k) for k in ("author", "channel", "ts", "response_url")}
            return cls(text=str(data.get("text") or ""), **fields, cut=bool(data.get("cut")))
        except (ValueError, TypeError):
            return cls(text="", author=None, channel=None, ts=None, response_url=None)

    def fitted(self) -> Origin:
        """This origin with its text cut to the longest beginning whose metadata holds in Slack's
        3,000 characters (counted in UTF-8 bytes, which are never fewer)."""
        if len(self.metadata().encode()) <= METADATA_LIMIT:
            return self

        def cut(keep: int) -> Origin:
            return replace(self, text=self.text[:keep].rstrip(), cut=True)

        low, high = 0, len(self.text)  # cut(low) fits, cut(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            if len(cut(middle).metadata().encode()) <= METADATA_LIMIT:
                low = middle
            else:
                high = middle
        return cut(low)


def build_view(origin: Origin, sets: list[SetSummary], *, chosen: str | None = None) -> dict[str, Any]:
    """The modal for `origin`, offering `sets`; `chosen` is the set whose labels are offered."""
    names = [s.name for s in sets][:MAX_OPTIONS]
    if chosen not in names:
        chosen = label_sets.DEFAULT_SET if label_sets.DEFAULT_SET in names else (names[0] if names else None)
    blocks: list[Block] = [
        text.section(f"{label_sets.mention(origin.author)} wrote:\n{label_sets.quote(origin.text, PREVIEW)}")
    ]
    if origin.cut:
        blocks.append(
            text.context(f"The message is long: its first {len(origin.text):,} characters will be kept.")
        )
    if chosen is not None:
        blocks.append(
            {
                "type": "input",
                "block_id": SET_PICK,
                "optional": True,
                "dispatch_action": True,
                "label": {"type": "plain_text", "text": "Label set"},
                "element": {
                    "type": "static_select",
                    "action_id": SET_CHANGED,
                    "options": [option(name) for name in names],
                    "initial_option": option(chosen),
                },
            }
        )
    blocks.append(
        _text_input(
            SET_NEW,
            "…or a new label set" if chosen is not None else "Label set",
            initial=None if chosen is not None else label_sets.DEFAULT_SET,
            hint="Leave empty to use the set picked above." if chosen is not None else None,
        )
    )
    labels = next((list(s.label_counts) for s in sets if s.name == chosen), [])[:MAX_OPTIONS]
    if labels:
        blocks.append(
            {
                "type": "input",
                # Named after the set, so a label picked in another set is not carried over.
                "block_id": f"{LABEL_PICK}:{_short_hash(chosen or '')}",
                "optional": True,
                "label": {"type": "plain_text", "text": "Label"},
                "element": {
                    "type": "static_select",
                    "action_id": "label",
                    "placeholder": {"type": "plain_text", "text": "Pick a label"},
                    "options": [option(label) for label in labels],
                },
            }
        )
    blocks.append(
        _text_input(
            LABEL_NEW,
            "…or a new label" if labels else "Label",
            hint="Leave empty to use the label picked above." if labels else None,
        )
    )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": {"type": "plain_text", "text": "Add as label example"},
        "submit": {"type": "plain_text", "text": "Add"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": origin.metadata(),
        "blocks": blocks,
    }


def _text_input(block_id: str, label: str, *, initial: str | None = None, hint: str | None = None) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "name", "max_length": 200}
    if initial:
        element["initial_value"] = initial
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Choice:
    """The set and label chosen in the modal. A name too long for an option value is still the
    `sha:` hash the option carried (see `label_sets.option_value`) until `resolve` looks it up."""

    set_name: str
    label: str

    def resolve(self, store: Store, team_id: str) -> Choice | None:
        """The choice with hashed names looked up among the workspace's sets and labels."""
        if not (self.set_name.startswith("sha:") or self.label.startswith("sha:")):
            return self
        sets = store.list_sets(team_id)
        set_name = label_sets.from_option(self.set_name, [s.name for s in sets])
        if set_name is None:
            return None
        labels = next((list(s.label_counts) for s in sets if s.name == set_name), [])
        label = label_sets.from_option(self.label, labels)
        return None if label is None else Choice(set_name, label)


def read_choice(view: Mapping[str, Any]) -> Choice | dict[str, str]:
    """The set and label the modal's state says, or the errors to show in it ({block_id: sentence})."""
    values: Mapping[str, Any] = (view.get("state") or {}).get("values") or {}
    picked_set = _selected(values.get(SET_PICK, {}).get(SET_CHANGED))
    new_set = _typed(values.get(SET_NEW, {}).get("name"))
    label_block = next((k for k in values if k.startswith(LABEL_PICK)), None)
    picked_label = _selected(values.get(label_block, {}).get("label")) if label_block else None
    new_label = _typed(values.get(LABEL_NEW, {}).get("name"))

    errors: dict[str, str] = {}
    set_name = new_set or picked_set
    label = new_label or picked_label
    if not set_name:
        errors[SET_NEW] = "Pick a label set above or name a new one."
    elif new_set:
        problem = label_sets.refusal(checks.set_name, new_set)
        if problem:
            errors[SET_NEW] = problem
    if not label:
        errors[LABEL_NEW] = "Pick a label above or name a new one." if label_block else "Name the label."
    elif new_label:
        problem = label_sets.refusal(checks.label_name, new_label)
        if problem:
            errors[LABEL_NEW] = problem
    if errors or set_name is None or label is None:
        return errors
    return Choice(set_name.strip(), label.strip())


def _selected(state: Mapping[str, Any] | None) -> str | None:
    option_state = (state or {}).get("selected_option") or {}
    value = option_state.get("value")
    return str(value) if value else None


def _typed(state: Mapping[str, Any] | None) -> str | None:
    value = (state or {}).get("value")
    return str(value).strip() or None if value else None


def register(app: App) -> None:
    """The modal's set picker (refreshes the labels) and its submission (stores the example)."""
    app.action(SET_CHANGED)(ack=acknowledge, lazy=[refresh_labels])
    app.view(CALLBACK_ID)(ack=check_choice, lazy=[store_example])


def refresh_labels(body: dict[str, Any], context: BoltContext) -> None:
    """Offer the labels of the set just picked (`views.update`)."""
    deps, request = deps_of(context), SlackRequest.of_action(body, context)
    view = body.get("view") or {}
    action = (body.get("actions") or [{}])[0]
    chosen = _selected(action)
    sets = deps.store.list_sets(request.workspace)
    if chosen is not None and chosen.startswith("sha:"):
        chosen = label_sets.from_option(chosen, [s.name for s in sets])
    origin = Origin.from_metadata(str(view.get("private_metadata") or ""))
    try:
        request.client.views_update(
            view_id=view.get("id"),
            hash=view.get("hash"),
            view=build_view(origin, sets, chosen=chosen),
        )
    except SlackApiError as exc:
        # hash_conflict: the user changed the set again meanwhile, and that update wins.
        request.logger.info("could not refresh the labels of the modal: %s", exc.response.get("error"))


def check_choice(ack: Ack, view: dict[str, Any]) -> None:
    """Show the modal's mistakes in it (`response_action: errors`), or close it."""
    choice = read_choice(view)
    if isinstance(choice, dict):
        ack(response_action="errors", errors=choice)
    else:
        ack()


def store_example(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Store the message as an example of the chosen label, and tell the user privately."""
    choice = read_choice(view)
    if isinstance(choice, dict):
        return  # the modal showed the errors
    origin = Origin.from_metadata(str(view.get("private_metadata") or ""))
    deps = deps_of(context)
    request = SlackRequest.of_view(body, context, channel=origin.channel, response_url=origin.response_url)
    team, user, replier = request.workspace, request.user, request.replier
    try:
        # Checked again here, as the shortcut checked them: the bound and rights can change
        # while a modal is open.
        refusal = message_too_long(origin.text, deps.settings.max_text_chars)
        if refusal:
            _tell(replier, f":warning: {refusal}")
            return
        refusal = deps.rights.curation_refusal(request.client, team, user)
        if refusal:
            _tell(replier, f":no_entry: {refusal}")
            return
        resolved = choice.resolve(deps.store, team)
        if resolved is None:
            _tell(replier, ":warning: That label set or label is gone; try the shortcut again.")
            return
        choice = resolved
        link = label_sets.permalink(request.client, origin.channel, origin.ts)
        result = deps.store.add_examples(
            team,
            choice.set_name,
            [ExampleInput(choice.label, origin.text, author=origin.author, source_url=link)],
            actor=user,
            added_by=user,
        )
        summary = deps.store.get_set(team, choice.set_name)
    except GembotError as exc:
        _tell(replier, f":warning: {describe_error(exc)}")
        return
    except Exception as exc:
        request.logger.exception("could not store an example from the modal")
        _tell(replier, f":warning: {describe_error(exc)}")
        return
    where = f"{bold(choice.label)} in label set {bold(choice.set_name)}"
    if result.added:
        size = label_sets.examples_count(summary)
        _tell(
            replier,
            f":white_check_mark: Added the message as example #{result.ids[0]} of {where} "
            f"({text.plural(size, 'example')} in the set now).",
        )
    else:
        _tell(replier, f"{where} already has that text as an example; nothing changed.")


def _tell(replier: Replier, message: str) -> None:
    """Privately where the shortcut was used; where that fails (a DM between people, an expired
    response_url), in the user's DM with the bot."""
    try:
        replier.ephemeral(message)
        return
    except SlackClientError as exc:
        replier.log.info("could not answer in the channel (%s); sending a DM", exc)
    if replier.to.user:
        try:
            replier.client.chat_postMessage(channel=replier.to.user, text=message)
        except SlackClientError as exc:
            replier.log.warning("could not tell the user about their example (%s): %s", exc, message)
