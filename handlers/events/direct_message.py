"""Direct messages: questions (with images or documents) for Gemini, CSV files to import or classify,
and prompt experiments.

Every message a person sends the bot is answered in its thread. A message with a line starting
`run:` is an experiment over the CSV or JSONL file sent with it (`handlers.experiment_runs`). A
CSV file goes to `handlers.bulk` (`import` or `classify`) unless the message is a question naming
neither (then Gemini reads it as text); anything else is a question for Gemini, which carries on
the thread's conversation, images and documents included (read back from the database).
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from handlers import attachments, bulk, conversation, experiment_runs, matchers
from handlers.acks import acknowledge


def register(app: App) -> None:
    """`message.im`: acknowledged at once; downloads, Gemini and classification run lazily."""
    app.event("message", matchers=[matchers.from_a_person, matchers.in_a_dm])(
        ack=acknowledge, lazy=[answer_direct_message]
    )
    app.event("message", matchers=[matchers.in_a_dm])(ignore_direct_message)


def answer_direct_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    """Run the experiment asked, import or classify the CSV files sent, or answer the question in
    the message's thread."""
    with conversation.answering(event, body, context) as (deps, request, question):
        if experiment_runs.asks_for_a_run(question.text):
            tables = [f for f in question.files if experiment_runs.is_table(f)]
            if len(tables) == 1:
                experiment_runs.handle(deps, request, file=tables[0], message=question.text)
            elif tables:
                request.replier.post(experiment_runs.ONE_FILE.format(count=len(tables)))
            else:
                request.replier.post(experiment_runs.NEED_A_FILE)
            return
        tables = [f for f in question.files if attachments.is_csv(f)]
        if tables and is_a_job(question.text):
            if question.files_note:
                request.replier.post(question.files_note)
            for table in tables:
                bulk.handle(deps, request, file=table, message=question.text)
            return
        if not question.files and bulk.is_bare_request(question.text):
            action = bulk.parse_request(question.text).action or "import"
            request.replier.post(bulk.NEED_A_FILE.format(action=action))
            return
        conversation.carry_on(deps, request, question, help_text=conversation.HELP_DM)


def is_a_job(message: str) -> bool:
    """Whether CSV files sent with `message` go to `handlers.bulk`: unless the message is a
    question (it has a `?`) that names neither `import` nor `classify`, when they are documents
    for Gemini to read as text."""
    return bulk.names_a_job(message) or "?" not in message


def ignore_direct_message() -> None:
    """Edits, deletions and bots' messages in DMs: acknowledged (or Slack would resend them)."""
