"""Direct messages: questions (with images) for Gemini, and CSV files to import or classify.

Every message a person sends the bot is answered in its thread. A CSV file goes to
`handlers.bulk` (`import` or `classify`); anything else is a question for Gemini, which carries
on the thread's conversation, images included (read back from the database).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from handlers import attachments, bulk, conversation, matchers
from handlers.deps import Deps
from handlers.replies import Replier, Where
from handlers.scope import workspace_of


def register(app: App, deps: Deps) -> None:
    """`message.im`: acknowledged at once; downloads, Gemini and classification run lazily."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def answer(
        event: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        logger: logging.Logger,
    ) -> None:
        team = workspace_of(context)
        where = Where.of_event(event, team=team)
        replier = Replier(client, where, logger=logger)
        found = attachments.files_of(event)
        message = conversation.question_of(
            str(event.get("text") or ""), conversation.bot_user_id(context, body)
        )
        token = conversation.bot_token(context, client)
        with replier.reporting_errors():
            tables = [f for f in found if attachments.is_csv(f)]
            if tables:
                for table in tables:
                    bulk.handle(
                        deps,
                        replier,
                        file=table,
                        message=message,
                        team=team,
                        user=where.user,
                        client=client,
                        token=token,
                        enterprise=context.enterprise_id,
                    )
                return
            if not found and bulk.is_bare_request(message):
                action = bulk.parse_request(message).action or "import"
                replier.post(bulk.NEED_A_FILE.format(action=action))
                return
            conversation.carry_on(
                deps,
                replier,
                thread=conversation.Thread(team, where.channel, str(where.thread_ts)),
                question=message,
                files=found,
                client=client,
                token=token,
                help_text=conversation.HELP_DM,
            )

    app.event("message", matchers=[matchers.from_a_person, matchers.in_a_dm])(ack=acknowledge, lazy=[answer])

    @app.event("message", matchers=[matchers.in_a_dm])
    def ignore_the_rest() -> None:
        """Edits, deletions and bots' messages in DMs: acknowledged (or Slack would resend them)."""
