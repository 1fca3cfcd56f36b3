"""Conversations with Gemini in Slack threads, shared by mentions and direct messages.

A thread's turns (the user's text with its images or documents, the model's answers) are kept in
the database under (workspace, channel, thread ts). Each new question is sent with the turns before
it, read back from the database, so a follow-up can ask about an image posted earlier without
anything being downloaded from Slack again, and the conversation survives a restart.

What piles up is bounded, and the answer says what was left out: a message's first
GEMBOT_MAX_FILES files are read; each question replays the thread's latest
GEMBOT_MAX_THREAD_TURNS turns, and of their images the newest that fit in
GEMBOT_MAX_THREAD_IMAGE_BYTES in all (the question's own images always go). Only that much is read
from the database. Turns older than GEMBOT_CONVERSATION_RETENTION_DAYS are pruned
(`bot.background.Housekeeping`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from core import daily_limits
from core.errors import GembotError
from core.gemini.generation import Role, Turn, generate_stream
from core.gemini.images import ImageInput
from core.store import TurnRecord
from handlers import attachments, bounds, text, thread_context
from handlers.actions.answer_feedback import feedback_footer
from handlers.deps import NOT_CONFIGURED, Deps, deps_of
from handlers.request import SlackRequest
from handlers.source_links import sources_footer
from handlers.streaming import StreamedAnswer, show_status, stream_into
from handlers.text import Block

log = logging.getLogger(__name__)

SYSTEM_INSTRUCTION = (
    "You are Gembot, an assistant answering in a Slack thread. Answer the latest message, using "
    "the earlier turns, images and documents of the thread as context. Be concise; use Markdown "
    "sparingly (short paragraphs, bullet lists, code blocks)."
)
HELP = (
    "Ask me about an image: mention me with a question and attach one or more images (PNG, JPEG, "
    "WEBP, HEIC; GIF and most other formats are converted), or just ask a question. Mention me "
    "again in the same thread to carry on: I remember the thread, images included. I read PDFs "
    "and .txt, .md and .csv files too."
)
HELP_DM = (
    "Ask me about an image: send me a question with one or more images attached (PNG, JPEG, WEBP, "
    "HEIC; GIF and most other formats are converted), or just a question. Reply in the thread to "
    "carry on: I remember it, images included. I read PDFs and .txt, .md and .csv files too.\n"
    "Send me a CSV file with the word `import` to add its `text,label` rows as label examples, or "
    "with the word `classify` to label its `text` column (add `set:NAME` for a set other than "
    "`default`).\n"
    "Send me a CSV or JSONL file with `run: <prompt with {column}s>` (and `models: a, b` if you "
    "like) to run the prompt over every row on each model and compare them."
)
NOT_SAVED = "_I couldn't save this exchange, so I won't remember it in this thread._"
CUT_OFF = "_The answer was cut off at the model's output limit._"
FILES_LEFT_OUT = "_I read the first {kept} of {sent} files (whoever runs me can raise GEMBOT_MAX_FILES)._"
TURNS_LEFT_OUT = (
    "_Earlier messages in this thread were left out: I read the last {turns} turns (whoever runs me "
    "can raise GEMBOT_MAX_THREAD_TURNS)._"
)
IMAGES_LEFT_OUT = (
    "_{images} left out (over {megabytes} MB in all; whoever runs me can raise "
    "GEMBOT_MAX_THREAD_IMAGE_BYTES)._"
)


@dataclass(frozen=True)
class Question:
    """A person's message to the bot (a mention or a DM): its text, the bot's own mention removed,
    and its first GEMBOT_MAX_FILES files; `files_sent` says how many it had in all."""

    text: str
    files: tuple[dict[str, Any], ...]
    files_sent: int

    @classmethod
    def of(
        cls, event: Mapping[str, Any], body: Mapping[str, Any], context: Mapping[str, Any], *, max_files: int
    ) -> Question:
        """The question `event` asks, keeping its first `max_files` files."""
        found = attachments.files_of(event)
        return cls(
            text=question_of(str(event.get("text") or ""), bot_user_id(context, body)),
            files=tuple(found[: max(0, max_files)]),
            files_sent=len(found),
        )

    @property
    def files_note(self) -> str | None:
        """The line saying files were left out, when some were."""
        return files_left_out(len(self.files), self.files_sent)


@contextmanager
def answering(
    event: Mapping[str, Any], body: Mapping[str, Any], context: Mapping[str, Any]
) -> Iterator[tuple[Deps, SlackRequest, Question]]:
    """What a listener answering a message needs: the process's `Deps`, the request (answered in
    the message's thread) and the question; inside, Gemini calls are charged to the requester and
    failures are told in the thread (`Replier.reporting_errors`)."""
    deps, request = deps_of(context), SlackRequest.of_event(event, context)
    question = Question.of(event, body, context, max_files=deps.settings.max_files)
    with daily_limits.acting_for(deps.meter, request.actor), request.replier.reporting_errors():
        yield deps, request, question


def files_left_out(kept: int, sent: int) -> str | None:
    """The line saying only the first `kept` of `sent` files were read, when `sent` is more."""
    return FILES_LEFT_OUT.format(kept=kept, sent=sent) if sent > kept else None


def bot_user_id(context: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """The bot's own user id: Bolt's context, else the event's `authorizations`."""
    found = context.get("bot_user_id")
    if found:
        return str(found)
    for authorization in body.get("authorizations") or []:
        if authorization.get("is_bot") and authorization.get("user_id"):
            return str(authorization["user_id"])
    return None


def question_of(message: str, bot_user: str | None) -> str:
    """The message's text without the bot's own mention (`<@UBOT>` or `<@UBOT|name>`)."""
    if bot_user:
        message = re.sub(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>", " ", message)
    return re.sub(r"[ \t]+", " ", message).strip()


def history(records: Sequence[TurnRecord]) -> list[Turn]:
    """Stored turns as Gemini turns, oldest first.

    Two turns of the same role in a row (a question whose answer could not be stored, or two
    processes answering one thread at once) are merged, so the roles always alternate.
    """
    turns: list[Turn] = []
    for record in records:
        role: Role = "model" if record.role == "model" else "user"
        images = tuple(ImageInput(i.mime_type, i.data) for i in record.images)
        _append(turns, Turn(role, record.text, images))
    return turns


@dataclass(frozen=True)
class Replay:
    """What of a thread's stored turns goes to Gemini with a question, and what was left out."""

    records: tuple[TurnRecord, ...]
    #: Whether earlier turns of the thread are not in `records`.
    turns_left_out: bool
    #: Images of `records` left out to stay within the byte bound (newer ones were kept).
    images_left_out: int


def bounded(records: Sequence[TurnRecord], *, max_turns: int) -> Replay:
    """The newest `max_turns` of `records` (oldest first), beginning with a user turn.

    Read one turn more than `max_turns` from the store, so that whether earlier turns exist is
    known without counting them. An answer whose question falls outside the bound is left out
    too: the replay never opens with the model. The images the store did not read (over
    GEMBOT_MAX_THREAD_IMAGE_BYTES) are counted, for the answer to say so.
    """
    kept = list(records[-max_turns:]) if max_turns > 0 else []
    cut = len(kept) < len(records)
    while kept and kept[0].role == "model":
        kept.pop(0)
        cut = True
    return Replay(
        records=tuple(kept),
        turns_left_out=cut,
        images_left_out=sum(r.images_left_out for r in kept),
    )


def replay_notes(replay: Replay, *, max_image_bytes: int) -> list[str]:
    """The lines saying what `replay` left out of the thread, if anything."""
    notes = []
    if replay.turns_left_out:
        notes.append(TURNS_LEFT_OUT.format(turns=len(replay.records)))
    if replay.images_left_out:
        n = replay.images_left_out
        images = "1 earlier image was" if n == 1 else f"{n} earlier images were"
        notes.append(IMAGES_LEFT_OUT.format(images=images, megabytes=f"{max_image_bytes / 1e6:g}"))
    return notes


def with_question(turns: Sequence[Turn], question: str, images: Sequence[ImageInput]) -> list[Turn]:
    """`turns` followed by the user's new question (merged into a trailing user turn, if any)."""
    out = list(turns)
    _append(out, Turn("user", question, tuple(images)))
    return out


def _append(turns: list[Turn], turn: Turn) -> None:
    if turns and turns[-1].role == turn.role:
        last = turns.pop()
        joined = "\n\n".join(t for t in (last.text, turn.text) if t.strip())
        turn = Turn(turn.role, joined, last.images + turn.images)
    turns.append(turn)


#: A conversation's thread: (workspace key, channel, the thread's first message ts).
ThreadKey = tuple[str, str, str]


class ThreadLocks:
    """One lock per thread, so that a process answers the questions of a thread one at a time
    and each sees the answers before it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[ThreadKey, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, thread: ThreadKey) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(thread, (threading.Lock(), 0))
            self._locks[thread] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[thread]
                if users <= 1:
                    del self._locks[thread]
                else:
                    self._locks[thread] = (lock, users - 1)


_locks = ThreadLocks()


def _working_text(files: Sequence[Mapping[str, Any]]) -> str:
    if any(attachments.is_document(f) for f in files):
        return "Reading the files…" if len(files) > 1 else "Reading the file…"
    what = f"{len(files)} images" if len(files) > 1 else "the image" if files else ""
    return f"Looking at {what}…" if what else "Thinking…"


def carry_on(deps: Deps, request: SlackRequest, question: Question, *, help_text: str = HELP) -> None:
    """Answer `question` (with its images and documents) in the request's thread, with the
    thread's earlier turns.

    The question's files are its message's first GEMBOT_MAX_FILES (`Question.of` cuts them; a
    line under the answer says the rest were left out). The earlier turns are bounded
    (`bounded`), and the answer says in a line under it what was left out.

    Run inside `answering` (or `request.replier.reporting_errors()`): a file that is not an
    image, too large, or that Slack would not hand over ends in a sentence in place of the
    "working" message, before Gemini is called (a document is a PDF or a text file that must be
    what it claims, `core.gemini.documents`, stored and replayed as the images are); a question
    over GEMBOT_MAX_TEXT_CHARS is refused before anything else.
    """
    settings, replier, files = deps.settings, request.replier, question.files
    if not question.text and not files:
        replier.post(help_text)
        return
    if deps.gemini is None:
        replier.post(NOT_CONFIGURED)
        return
    refusal = bounds.too_long(question.text, settings.max_text_chars, what="Your message")
    if refusal:
        replier.post(refusal)
        return
    # Over a daily limit, said privately before anything is posted or downloaded (`core.daily_limits`).
    daily_limits.check()
    working = replier.working(_working_text(files))
    show_status(replier, request.thread_ts)
    images = [
        attachments.fetch_media(
            request.client,
            f,
            token=request.token,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
        )
        for f in files
    ]
    gemini = deps.require_gemini()
    store = deps.store
    footer: list[Block] = []
    team, channel, ts = request.workspace, request.channel, request.thread_ts or ""
    with _locks.hold((team, channel, ts)):
        replay = bounded(
            store.conversation(
                team,
                channel,
                ts,
                limit=settings.max_thread_turns + 1,
                max_image_bytes=settings.max_thread_image_bytes,
            ),
            max_turns=settings.max_thread_turns,
        )
        earlier = history(replay.records) or thread_context.earlier_messages(request)
        shown = StreamedAnswer(
            replier, thread_ts=ts or None, placeholder=working, user=request.user, team=request.team
        )
        answer = stream_into(
            shown,
            lambda: generate_stream(
                gemini,
                with_question(earlier, question.text, images),
                system_instruction=SYSTEM_INSTRUCTION,
                grounding=settings.grounding == "search",
            ),
        )
        try:
            store.add_turn(
                team, channel, ts, "user", question.text, images=[(i.mime_type, i.data) for i in images]
            )
            store.add_turn(team, channel, ts, "model", answer.text)
        except GembotError as exc:
            # The answer is still worth showing; the thread just won't remember it.
            log.warning("could not store a turn of %s in %s: %s", ts, channel, exc)
            footer.append(text.context(NOT_SAVED))
    notes = [question.files_note, *replay_notes(replay, max_image_bytes=settings.max_thread_image_bytes)]
    footer[:0] = [text.context(note) for note in notes if note]
    if answer.truncated:
        footer.insert(0, text.context(CUT_OFF))
    footer += sources_footer(answer.sources)
    footer += feedback_footer(deps, request, channel=working.channel, ts=shown.message_ts, model=answer.model)
    shown.finish(footer=footer)
