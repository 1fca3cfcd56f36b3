"""Message shortcut **Add as label example** (`add_label_example` in manifest.yml): opens the modal
of `handlers.views.add_example` for the message's text, which stores it with its author and link.
A message with no text, or longer than GEMBOT_MAX_TEXT_CHARS, is refused privately instead."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from handlers import label_sets, text
from handlers.acks import acknowledge
from handlers.deps import deps_of
from handlers.request import SlackRequest
from handlers.views.add_example import Origin, build_view, message_too_long

CALLBACK_ID = "add_label_example"
NO_TEXT = "That message has no text to add as a label example."


def register(app: App) -> None:
    """Acknowledged at once; the modal opens right after (a trigger_id lasts 3 seconds)."""
    app.shortcut(CALLBACK_ID)(ack=acknowledge, lazy=[open_add_example])


def open_add_example(body: dict[str, Any], context: BoltContext) -> None:
    """Open the modal for the message's text, or say privately why it cannot be added."""
    deps, request = deps_of(context), SlackRequest.of_shortcut(body, context)
    message = body.get("message") or {}
    replier = request.replier
    with replier.reporting_errors():
        content = text.plain(str(message.get("text") or "")).strip()
        if not content:
            replier.ephemeral(NO_TEXT)
            return
        refusal = message_too_long(content, deps.settings.max_text_chars)
        if refusal:
            replier.ephemeral(refusal)
            return
        if label_sets.curation_refused(deps, request):
            return
        origin = Origin(
            text=content,
            author=message.get("user") or message.get("bot_id") or message.get("username"),
            channel=request.channel or None,
            ts=request.message_ts,
            response_url=request.response_url,
        ).fitted()
        sets = deps.store.list_sets(request.workspace)
        request.client.views_open(trigger_id=body["trigger_id"], view=build_view(origin, sets))
