"""`@Gembot QUESTION`, with or without images: Gemini answers in the thread, which remembers.

The answer replaces a "working" message in the mention's thread. Later mentions in that thread
carry the conversation on, earlier images included (read back from the database). Mentions in a
direct message are left to `direct_message`, which answers every message there.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from handlers import attachments, conversation, matchers
from handlers.deps import Deps
from handlers.replies import Replier, Where
from handlers.scope import workspace_of

CSV_BY_DM = (
    "Send CSV files to me in a direct message: with the word `import` to add their `text,label` rows "
    "as label examples, or with `classify` to label their `text` column."
)


def _answerable(event: dict[str, Any]) -> bool:
    return matchers.is_from_a_person(event) and not matchers.in_a_dm(event)


def register(app: App, deps: Deps) -> None:
    """`app_mention`: acknowledged at once; downloads and Gemini run in a lazy listener."""

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
        question = conversation.question_of(
            str(event.get("text") or ""), conversation.bot_user_id(context, body)
        )
        with replier.reporting_errors():
            if any(attachments.is_csv(f) for f in found):
                replier.post(CSV_BY_DM)
                return
            conversation.carry_on(
                deps,
                replier,
                thread=conversation.Thread(team, where.channel, str(where.thread_ts)),
                question=question,
                files=found,
                client=client,
                token=conversation.bot_token(context, client),
            )

    app.event("app_mention", matchers=[_answerable])(ack=acknowledge, lazy=[answer])

    @app.event("app_mention")
    def ignore_the_rest() -> None:
        """Mentions by bots, and in DMs (answered as messages): acknowledged, not answered."""
