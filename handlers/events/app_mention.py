"""`@Gembot QUESTION`, with images or documents (PDF, text) or none: answered in the thread.

The answer replaces a "working" message in the mention's thread. Later mentions in that thread
carry the conversation on, earlier images included (read back from the database). Mentions in a
direct message are left to `direct_message`, which answers every message there.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from handlers import attachments, bulk, conversation, matchers
from handlers.acks import acknowledge

CSV_BY_DM = (
    "Send CSV files to me in a direct message: with the word `import` to add their `text,label` rows "
    "as label examples, or with `classify` to label their `text` column."
)


def register(app: App) -> None:
    """`app_mention`: acknowledged at once; downloads and Gemini run in a lazy listener."""
    app.event("app_mention", matchers=[answerable])(ack=acknowledge, lazy=[answer_mention])
    app.event("app_mention")(ignore_mention)


def answerable(event: dict[str, Any]) -> bool:
    """Bolt listener matcher: a person's mention outside a DM (where `direct_message` answers)."""
    return matchers.is_from_a_person(event) and not matchers.in_a_dm(event)


def answer_mention(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    """Answer the mention in its thread, carrying the thread's conversation on."""
    with conversation.answering(event, body, context) as (deps, request, question):
        # A CSV with `import` or `classify` is a job for the DM; with another question, a document.
        if any(attachments.is_csv(f) for f in question.files) and bulk.names_a_job(question.text):
            request.replier.post(CSV_BY_DM)
            return
        conversation.carry_on(deps, request, question)


def ignore_mention() -> None:
    """Mentions by bots, and in DMs (answered as messages): acknowledged, not answered."""
