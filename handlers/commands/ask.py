"""`/ask PROMPT`: Gemini's answer, in the channel, in place of a "working" message."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from core import daily_limits
from core.gemini.generation import generate_stream
from handlers import bounds, text
from handlers.acks import acknowledge_or_refuse
from handlers.actions.answer_feedback import feedback_footer
from handlers.deps import NOT_CONFIGURED, Deps, deps_of
from handlers.request import SlackRequest
from handlers.source_links import sources_footer
from handlers.streaming import StreamedAnswer, stream_into

ANSWERED_BELOW = ":speech_balloon: The answer is in the thread."
# The question's message once answered, as notifications and screen readers read it.
ANSWERED_TEXT = "Asked: {question} (the answer is in the thread)"
USAGE = "Usage: `/ask QUESTION`, for example `/ask What makes a good incident report?`"


def register(app: App) -> None:
    """`/ask`: acknowledged at once; Gemini is asked by a lazy listener after the ack."""
    app.command("/ask")(ack=acknowledge_ask, lazy=[answer_ask])


def refusal(deps: Deps, prompt: str) -> str | None:
    """What the ack answers privately instead of asking Gemini (usage, a text too long, no
    Gemini), or None when the lazy listener asks."""
    if not prompt:
        return USAGE
    return bounds.too_long(prompt, deps.settings.max_text_chars, what="Your question") or (
        NOT_CONFIGURED if deps.gemini is None else None
    )


def acknowledge_ask(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Answer in the ack itself, privately, what needs no Gemini call."""
    acknowledge_or_refuse(ack, refusal(deps_of(context), (command.get("text") or "").strip()))


def answer_ask(command: dict[str, Any], context: BoltContext) -> None:
    """Ask Gemini, charged to the requester, and show the answer in place of a "working" message."""
    deps, request = deps_of(context), SlackRequest.of_command(command, context)
    prompt = (command.get("text") or "").strip()
    if refusal(deps, prompt):
        return  # already answered by the ack
    question = text.fallback(text.neutralise(prompt), 2_500)
    asked = [text.context(f"<@{request.user}> asked: {question}")]
    replier = request.replier
    with daily_limits.acting_for(deps.meter, request.actor), replier.reporting_errors():
        # Over a daily limit, said privately before anything is posted (`core.daily_limits`).
        daily_limits.check()
        working = replier.working("Asking Gemini…", header=asked)
        gemini = deps.require_gemini()
        # The answer streams into the thread of the "asked" message, which stays as its header;
        # where Slack will not stream, it replaces the "working" line as before.
        shown = StreamedAnswer(
            replier,
            thread_ts=working.ts,
            placeholder=working,
            user=request.user,
            team=request.team,
            header=asked,
            keep_placeholder=True,
        )
        reply = stream_into(
            shown, lambda: generate_stream(gemini, prompt, grounding=deps.settings.grounding == "search")
        )
        footer = (
            [text.context("_The answer was cut off at the model's output limit._")] if reply.truncated else []
        )
        footer += sources_footer(reply.sources)
        footer += feedback_footer(
            deps, request, channel=working.channel, ts=shown.message_ts, model=reply.model
        )
        shown.finish(footer=footer)
        if shown.streamed and working.ts:
            pointer = [*asked, text.context(ANSWERED_BELOW)]
            working.update(ANSWERED_TEXT.format(question=question), blocks=pointer)
