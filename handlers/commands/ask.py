"""`/ask PROMPT`: Gemini's answer, in the channel, in place of a "working" message."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from core import daily_limits
from core.gemini.generation import generate
from handlers import bounds, text
from handlers.deps import NOT_CONFIGURED, Deps
from handlers.replies import Replier, Where

USAGE = "Usage: `/ask QUESTION`, for example `/ask What makes a good incident report?`"


def register(app: App, deps: Deps) -> None:
    """`/ask`: acknowledged at once; Gemini is asked by a lazy listener after the ack."""

    def too_long(prompt: str) -> str | None:
        return bounds.too_long(prompt, deps.settings.max_text_chars, what="Your question")

    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        # What needs no Gemini call is answered in the ack itself, privately.
        prompt = (command.get("text") or "").strip()
        if not prompt:
            ack(text=USAGE, response_type="ephemeral")
        elif refusal := too_long(prompt):
            ack(text=refusal, response_type="ephemeral")
        elif deps.gemini is None:
            ack(text=NOT_CONFIGURED, response_type="ephemeral")
        else:
            ack()

    def answer(command: dict[str, Any], client: WebClient, logger: logging.Logger) -> None:
        prompt = (command.get("text") or "").strip()
        if not prompt or deps.gemini is None or too_long(prompt):
            return  # already answered by the ack
        replier = Replier(client, Where.of_command(command), logger=logger)
        asked = [
            text.context(
                f"<@{command.get('user_id')}> asked: {text.fallback(text.neutralise(prompt), 2_500)}"
            )
        ]
        with replier.reporting_errors():
            # Over a daily limit, said privately before anything is posted (`core.daily_limits`).
            daily_limits.check()
            working = replier.working("Asking Gemini…", header=asked)
            reply = generate(deps.require_gemini(), prompt)
            footer = (
                [text.context("_The answer was cut off at the model's output limit._")]
                if reply.truncated
                else []
            )
            working.finish(reply.text, header=asked, footer=footer)

    app.command("/ask")(ack=acknowledge, lazy=[answer])
