"""Message shortcut **Add as label example** (`add_label_example` in manifest.yml): opens the modal
of `handlers.views.add_example` for the message's text, which stores it with its author and link.
A message with no text, or longer than GEMBOT_MAX_TEXT_CHARS, is refused privately instead."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from handlers import text
from handlers.acks import acknowledge
from handlers.deps import Deps
from handlers.replies import Replier, Where
from handlers.scope import workspace_of
from handlers.views.add_example import Origin, build_view, too_long

CALLBACK_ID = "add_label_example"
NO_TEXT = "That message has no text to add as a label example."


def register(app: App, deps: Deps) -> None:
    """Acknowledged at once; the modal opens right after (a trigger_id lasts 3 seconds)."""

    def open_modal(
        body: dict[str, Any], context: BoltContext, client: WebClient, logger: logging.Logger
    ) -> None:
        message = body.get("message") or {}
        replier = Replier(client, Where.of_action(body), logger=logger)
        with replier.reporting_errors():
            content = text.plain(str(message.get("text") or "")).strip()
            if not content:
                replier.ephemeral(NO_TEXT)
                return
            refusal = too_long(content, deps.settings.max_text_chars)
            if refusal:
                replier.ephemeral(refusal)
                return
            refusal = deps.rights.curation_refusal(client, workspace_of(context), replier.where.user)
            if refusal:
                replier.ephemeral(f":no_entry: {refusal}")
                return
            origin = Origin(
                text=content,
                author=message.get("user") or message.get("bot_id") or message.get("username"),
                channel=replier.where.channel or None,
                ts=message.get("ts") or body.get("message_ts"),
                response_url=replier.where.response_url,
            ).fitted()
            sets = deps.store.list_sets(workspace_of(context))
            client.views_open(trigger_id=body["trigger_id"], view=build_view(origin, sets))

    app.shortcut(CALLBACK_ID)(ack=acknowledge, lazy=[open_modal])
