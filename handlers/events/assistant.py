"""Slack's agent experience: the app's own messages surface (the "assistant" split view).

Built on Bolt's `Assistant` middleware, as Slack's bolt-python assistant template is. When a
person opens a thread with Gembot there (`assistant_thread_started`), Gembot greets them and sets
the thread's suggested prompts; when they switch channels beside it
(`assistant_thread_context_changed`), Bolt's default handler keeps the new context in the
greeting's message metadata (`DefaultAssistantThreadContextStore`, which is why the greeting goes
through Bolt's `say`). A message in the thread is answered as a DM is (`handlers.events.
direct_message`), and the thread gets a title from its first question.

Bolt's middleware takes every `message.im` event with a `thread_ts` and no `bot_id`, also in
workspaces that have not moved to the agent surface (a reply in a DM thread): those are answered
exactly as before, and only get no title (their thread already holds the bot's answer). A DM
outside a thread passes on to `direct_message`. Either way one listener answers each message.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Assistant, BoltContext
from slack_bolt.context.set_suggested_prompts import SetSuggestedPrompts
from slack_sdk.errors import SlackApiError

from core.errors import GembotError
from handlers import text
from handlers.acks import acknowledge
from handlers.deps import Deps, deps_of
from handlers.events import direct_message
from handlers.request import SlackRequest

GREETING = "Hi! Ask me anything, attach an image to ask about it, or pick one of the prompts below."
PROMPTS_TITLE = "Try one of these:"
#: Slack shows at most four prompts; each sends its `message` into the thread as the person.
PROMPTS: tuple[dict[str, str], ...] = (
    {"title": "Ask about an image", "message": "How do I ask you about an image?"},
    {"title": "Classify a message", "message": "How do I classify a message?"},
    {
        "title": "Cluster this channel's last 50 messages",
        "message": "How do I cluster this channel's last 50 messages?",
    },
)
#: The prompts are about Gembot's own commands, which Gemini does not know: Gembot answers them.
PROMPT_ANSWERS = {
    PROMPTS[0]["message"]: (
        "Attach one or more images (PNG, JPEG, WEBP, HEIC; most other formats are converted) to a "
        "message here with your question, and I'll ask Gemini about them. Reply in the thread to "
        "carry on: I remember the images."
    ),
    PROMPTS[1]["message"]: (
        "Type `/classify TEXT` in any channel (`/classify set:NAME TEXT` for another label set), or "
        "use the *Add as label example* shortcut on a message to teach a set. You can also send me "
        "a CSV file here with the word `classify` to label its `text` column."
    ),
    PROMPTS[2]["message"]: (
        "Type `/cluster last 50` in that channel: I'll group its last 50 messages by meaning and "
        "name each group. (Invite me first with `/invite @Gembot` if I'm not in it.)"
    ),
}
#: Slack cuts longer titles in the thread list anyway.
MAX_TITLE = 60


def register(app: App) -> None:
    """Bolt's `Assistant` middleware with Gembot's listeners; events not about an assistant thread
    (or a DM thread) pass on to the other listeners."""
    assistant = Assistant()
    assistant.thread_started(lazy=[greet])(acknowledge)
    assistant.user_message(lazy=[answer_in_thread])(acknowledge)
    app.assistant(assistant)


def greet(event: dict[str, Any], context: BoltContext) -> None:
    """Greet the person in the new assistant thread and set its suggested prompts."""
    thread = event.get("assistant_thread") or {}
    request = SlackRequest.of_event(
        {
            "channel": thread.get("channel_id"),
            "thread_ts": thread.get("thread_ts"),
            "user": thread.get("user_id"),
        },
        context,
    )
    say, prompts = context.get("say"), context.get("set_suggested_prompts")
    try:
        # Bolt's `say` puts the thread's context in the greeting's metadata, where its default
        # thread-context store keeps it (and rewrites it with the message's own `blocks`).
        if callable(say):
            say(text=GREETING, blocks=[text.section(GREETING)])
        else:
            request.replier.post(GREETING)
        if not isinstance(prompts, SetSuggestedPrompts):
            prompts = SetSuggestedPrompts(request.client, request.channel, request.thread_ts)
        prompts(prompts=list(PROMPTS), title=PROMPTS_TITLE)
    except SlackApiError as exc:
        request.logger.warning("could not set up an assistant thread: %s", exc.response.get("error"))


def answer_in_thread(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    """Answer a person's message in an assistant thread (or a DM thread) as a DM is answered,
    titling the thread after its first question."""
    deps, request = deps_of(context), SlackRequest.of_event(event, context)
    message = str(event.get("text") or "").strip()
    if first_question(deps, request) and message and message not in PROMPT_ANSWERS:
        set_title(context, request, title_of(message))
    if message in PROMPT_ANSWERS and not event.get("files"):
        with request.replier.reporting_errors():
            request.replier.post(PROMPT_ANSWERS[message])
        return
    direct_message.answer_direct_message(event, body, context)


def first_question(deps: Deps, request: SlackRequest) -> bool:
    """Whether the thread holds no turn yet: in a DM thread the bot answered before, it does.
    A database that cannot say costs the title, not the answer."""
    if request.thread_ts is None:
        return False
    try:
        return not deps.store.conversation(
            request.workspace, request.channel, request.thread_ts, limit=1, max_image_bytes=0
        )
    except GembotError:
        return False


def title_of(question: str) -> str:
    """The thread's title: the question's first line, shortened to MAX_TITLE characters."""
    line = " ".join(question.splitlines()[0].split()) if question.strip() else ""
    return line if len(line) <= MAX_TITLE else line[: MAX_TITLE - 1].rstrip() + "…"


def set_title(context: BoltContext, request: SlackRequest, title: str) -> None:
    """Title the thread (Bolt's `set_title`); a thread that is not an assistant thread refuses,
    which changes nothing for the answer."""
    setter = context.get("set_title")
    try:
        if callable(setter):
            setter(title)
        else:
            request.client.assistant_threads_setTitle(
                channel_id=request.channel, thread_ts=request.thread_ts or "", title=title
            )
    except SlackApiError as exc:
        request.logger.info("no title for thread %s: %s", request.thread_ts, exc.response.get("error"))
