"""Model output shown in Slack as Gemini writes it: a streamed message, or a message kept updated.

An answer goes into the request's thread through Slack's streaming methods (`chat.startStream`,
`chat.appendStream`, `chat.stopStream`, driven by slack_sdk's `chat_stream` helper). The pieces
Gemini sends are gathered and handed on at most every `FLUSH_SECONDS`, or sooner once
`FLUSH_CHARS` are waiting, so Slack sees a bounded number of calls per answer whatever the
number of tokens; the first text goes out as soon as it arrives.

Everything shown goes through `text.safe_markdown` (nothing pings, links show where they go),
cut where what comes later cannot change it (`text.stable_end`).

When Slack will not stream (`chat.startStream` refused: the channel does not allow it, a
missing scope, a bad argument) or a stream breaks on the way (`message_not_in_streaming_state`),
the answer carries on in a plain message kept up to date with `chat.update` (the "working"
message when there is one, else the stream's own message, else a new post), starting from what
was already shown, so no text is lost or repeated. An answer longer than one message holds
(`text.MARKDOWN_LIMIT`) carries on in a new message in the thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.chat_stream import ChatStream

from core.gemini.generation import Answer, AnswerStream
from handlers import text
from handlers.replies import Placeholder, Replier, slack_error_code
from handlers.text import Block

log = logging.getLogger(__name__)

#: Hand text on once this many characters wait…
FLUSH_CHARS = 800
#: …or this long after the last call to Slack.
FLUSH_SECONDS = 0.5
#: What a DM's thread status says while Gemini thinks.
LOADING_MESSAGES = ["Reading your message…", "Asking Gemini…", "Writing the answer…"]


def show_status(replier: Replier, thread_ts: str | None, status: str = "is thinking…") -> None:
    """The thread's loading status (`assistant.threads.setStatus`), where Slack has one: in the
    bot's DMs and assistant threads. Elsewhere Slack refuses it, which is ignored (the "working"
    message shows progress there)."""
    channel = replier.to.channel
    if not thread_ts or not channel.startswith("D"):
        return
    try:
        replier.client.assistant_threads_setStatus(
            channel_id=channel, thread_ts=thread_ts, status=status, loading_messages=LOADING_MESSAGES
        )
    except SlackClientError as exc:
        log.debug("no thread status in %s: %s", channel, exc)


class StreamedAnswer:
    """One answer shown as it is written, in the replier's thread (see the module doc).

    Feed it with `add(piece)`, end it with `finish(footer=...)`; on a failure, `abandon()` takes
    back what was shown (a partial answer stopped for safety is not shown).
    """

    def __init__(
        self,
        replier: Replier,
        *,
        thread_ts: str | None,
        placeholder: Placeholder | None = None,
        user: str | None = None,
        team: str | None = None,
        header: list[Block] | None = None,
        keep_placeholder: bool = False,
    ) -> None:
        self.replier = replier
        self.thread_ts = thread_ts
        self.placeholder = placeholder
        self.user = user
        self.team = team
        self.header = list(header or [])
        self.keep_placeholder = keep_placeholder
        self._raw = ""
        self._flushed = 0  # characters of `_raw` already handed on
        self._rendered = 0  # characters of the rendering already handed on, all messages together
        self._current = ""  # what the current message shows
        # A "working" message posted through a response_url (the bot cannot write here) has no
        # ts: no stream either, the answer replaces it as before.
        streamable = thread_ts and not (placeholder is not None and placeholder.ts is None)
        self._stream: ChatStream | None = self._new_stream() if streamable else None
        self._target: Placeholder | None = None if self._stream is not None else placeholder
        self._last_flush = 0.0
        self._last_update = 0.0
        self._started = False
        self._used_placeholder = False
        self._shown: list[str] = []  # ts of every message this answer wrote (for `abandon`)

    @property
    def message_ts(self) -> str | None:
        """The message the answer ends in so far, where its footer goes (None: Slack gave no ts)."""
        if self._shown:
            return self._shown[-1]
        return self.placeholder.ts if self.placeholder is not None else None

    @property
    def streamed(self) -> bool:
        """Whether the answer went into messages of its own, not in place of the "working" one."""
        return not self._used_placeholder

    # -- feeding ----------------------------------------------------------------------------

    def add(self, piece: str) -> None:
        """Take a piece of the answer; hand it on when the buffer is due (see the module doc)."""
        self._raw += piece
        due = not self._started or time.monotonic() - self._last_flush >= FLUSH_SECONDS
        due = due or len(self._raw) - self._flushed >= FLUSH_CHARS
        if due and text.stable_end(self._raw) > self._flushed:
            self._flush(final=False)

    def finish(self, *, footer: list[Block] | None = None) -> None:
        """Show the rest of the answer and `footer` under it, and close the message."""
        footer = list(footer or [])
        rest = text.safe_markdown(self._raw)[self._rendered :]
        if self._stream is not None and len(self._current) + len(rest) <= text.MARKDOWN_LIMIT:
            # The rest of the text rides on chat.stopStream itself: one call fewer.
            self._current += rest
            self._rendered += len(rest)
            self._flushed = len(self._raw)
            try:
                self._stream.stop(markdown_text=rest or None, blocks=footer or None)
                self._mark_started()
                return
            except SlackApiError as exc:
                self._fall_back(exc)
        self._flush(final=True)
        self._update(footer)

    def abandon(self) -> None:
        """Delete what this answer showed, so that a failure can be told in its place."""
        for ts in self._shown:
            if self.placeholder is not None and ts == self.placeholder.ts:
                continue  # the "working" message itself: the failure is told in its place
            try:
                self.replier.client.chat_delete(channel=self.replier.to.channel, ts=ts)
            except SlackClientError as exc:
                log.info("could not take back a partial answer: %s", exc)

    # -- plumbing ---------------------------------------------------------------------------

    def _new_stream(self) -> ChatStream:
        # buffer_size=1: the buffering is ours (characters or time), each append goes out at once.
        return self.replier.client.chat_stream(
            channel=self.replier.to.channel,
            thread_ts=str(self.thread_ts),
            recipient_user_id=self.user,
            recipient_team_id=self.team,
            buffer_size=1,
        )

    def _flush(self, *, final: bool) -> None:
        end = len(self._raw) if final else text.stable_end(self._raw)
        self._flushed = end
        rendered = text.safe_markdown(self._raw[:end])
        delta = rendered[self._rendered :]
        self._rendered = len(rendered)
        self._last_flush = time.monotonic()
        while delta:
            room = text.MARKDOWN_LIMIT - len(self._current)
            if len(delta) <= room:
                self._send(delta)
                return
            # The message is full: close it and carry on in a new one in the thread.
            cut = delta[:room].rfind("\n")
            cut = cut if cut > room // 2 else room
            self._send(delta[:cut])
            delta = delta[cut:]
            self._close_message()

    def _send(self, delta: str) -> None:
        self._current += delta
        if self._stream is not None:
            try:
                self._stream.append(markdown_text=delta)
                self._mark_started()
                return
            except SlackApiError as exc:
                self._fall_back(exc)
        if time.monotonic() - self._last_update >= FLUSH_SECONDS or not self._started:
            self._update([])

    def _mark_started(self) -> None:
        if self._started:
            return
        self._started = True
        ts = self._stream.ts if self._stream is not None else None
        if ts:
            self._shown.append(ts)
        # The answer is in its own message now: the "working" one has done its job.
        if (
            self.placeholder is not None
            and self.placeholder.ts
            and self._stream is not None
            and not self.keep_placeholder
        ):
            try:
                self.replier.client.chat_delete(channel=self.placeholder.channel, ts=self.placeholder.ts)
                if self.replier.placeholder is self.placeholder:
                    self.replier.placeholder = None
            except SlackClientError as exc:
                log.info("could not remove the working message: %s", exc)
            self.placeholder = None

    def _fall_back(self, exc: SlackApiError) -> None:
        """Carry on without streaming: in the stream's message if it exists, else the "working" one."""
        assert self._stream is not None
        log.info("streaming stopped (%s); answering by updates", slack_error_code(exc) or exc)
        ts = self._stream.ts
        self._stream = None
        if ts:
            self._target = Placeholder(self.replier, ts=ts, channel=self.replier.to.channel)
        else:
            self._target = self.placeholder
        self._last_update = 0.0

    def _update(self, footer: list[Block]) -> None:
        shown = self._current or " "
        in_placeholder = self.placeholder is not None and self._target is self.placeholder
        self._used_placeholder = self._used_placeholder or in_placeholder
        header = self.header if in_placeholder else []
        blocks = [*header, text.markdown_block(shown), *footer]
        fallback = text.fallback(shown)
        if self._target is None:
            self._target = self.replier.post(fallback, blocks=blocks, thread_ts=self.thread_ts)
            if self._target.ts:
                self._shown.append(self._target.ts)
        else:
            self._target.update(fallback, blocks=blocks)
            if self._target.ts and self._target.ts not in self._shown:
                self._shown.append(self._target.ts)
        self._started = True
        self._last_update = time.monotonic()

    def _close_message(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
            except SlackApiError as exc:
                self._fall_back(exc)
                self._update([])
            self._stream = self._new_stream() if self.thread_ts else None
            self._started_stream_reset()
        else:
            self._update([])
            self._target = None
        self._current = ""

    def _started_stream_reset(self) -> None:
        # The next message's first text opens its stream; its ts joins `_shown` then.
        self._started = False
        self.placeholder = None


def stream_into(shown: StreamedAnswer, start: Callable[[], AnswerStream]) -> Answer:
    """Gemini's answer, shown piece by piece in `shown` as `start()`'s stream yields it; on a
    failure on the way, what was shown is taken back (`StreamedAnswer.abandon`) and the failure
    raised, for `reporting_errors` to tell."""
    try:
        stream = start()
        for piece in stream:
            shown.add(piece)
        return stream.answer
    except BaseException:
        shown.abandon()
        raise
