"""Direct messages: questions (with images) for Gemini, and CSV files to import or classify.

Every message a person sends the bot is answered in its thread. A CSV file goes to
`handlers.bulk` (`import` or `classify`); anything else is a question for Gemini, which carries
on the thread's conversation, images included (read back from the database).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from handlers import attachments, bulk, conversation, matchers
from handlers.acks import acknowledge
from handlers.deps import Deps


def register(app: App, deps: Deps) -> None:
    """`message.im`: acknowledged at once; downloads, Gemini and classification run lazily."""

    def answer(
        event: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        logger: logging.Logger,
    ) -> None:
        incoming = conversation.incoming(
            event, body, context, client, logger, max_files=deps.settings.max_files
        )
        replier = incoming.replier
        with replier.reporting_errors():
            tables = [f for f in incoming.files if attachments.is_csv(f)]
            if tables:
                if incoming.files_note:
                    replier.post(incoming.files_note)
                for table in tables:
                    bulk.handle(
                        deps,
                        replier,
                        file=table,
                        message=incoming.text,
                        team=incoming.team,
                        user=incoming.where.user,
                        client=client,
                        token=incoming.token,
                        enterprise=context.enterprise_id,
                    )
                return
            if not incoming.files and bulk.is_bare_request(incoming.text):
                action = bulk.parse_request(incoming.text).action or "import"
                replier.post(bulk.NEED_A_FILE.format(action=action))
                return
            conversation.carry_on(
                deps,
                replier,
                thread=incoming.thread,
                question=incoming.text,
                files=incoming.files,
                client=client,
                token=incoming.token,
                help_text=conversation.HELP_DM,
                files_note=incoming.files_note,
            )

    app.event("message", matchers=[matchers.from_a_person, matchers.in_a_dm])(ack=acknowledge, lazy=[answer])

    @app.event("message", matchers=[matchers.in_a_dm])
    def ignore_the_rest() -> None:
        """Edits, deletions and bots' messages in DMs: acknowledged (or Slack would resend them)."""
