"""`@Gembot QUESTION`, with or without images: Gemini answers in the thread, which remembers.

The answer replaces a "working" message in the mention's thread. Later mentions in that thread
carry the conversation on, earlier images included (read back from the database). Mentions in a
direct message are left to `direct_message`, which answers every message there.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from handlers import attachments, conversation, matchers
from handlers.acks import acknowledge
from handlers.deps import Deps

CSV_BY_DM = (
    "Send CSV files to me in a direct message: with the word `import` to add their `text,label` rows "
    "as label examples, or with `classify` to label their `text` column."
)


def _answerable(event: dict[str, Any]) -> bool:
    return matchers.is_from_a_person(event) and not matchers.in_a_dm(event)


def register(app: App, deps: Deps) -> None:
    """`app_mention`: acknowledged at once; downloads and Gemini run in a lazy listener."""

    def answer(
        event: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        logger: logging.Logger,
    ) -> None:
        message = conversation.incoming(
            event, body, context, client, logger, max_files=deps.settings.max_files
        )
        with message.replier.reporting_errors():
            if any(attachments.is_csv(f) for f in message.files):
                message.replier.post(CSV_BY_DM)
                return
            conversation.carry_on(
                deps,
                message.replier,
                thread=message.thread,
                question=message.text,
                files=message.files,
                client=client,
                token=message.token,
                files_note=message.files_note,
            )

    app.event("app_mention", matchers=[_answerable])(ack=acknowledge, lazy=[answer])

    @app.event("app_mention")
    def ignore_the_rest() -> None:
        """Mentions by bots, and in DMs (answered as messages): acknowledged, not answered."""
