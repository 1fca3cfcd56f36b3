"""Answering in Slack: where an answer goes, the "working…" message it replaces, uploads, and errors in words.

Every listener builds its `SlackRequest` (`handlers.request`) and answers through its replier:

    replier = request.replier
    with replier.reporting_errors():
        working = replier.working("Asking Gemini…")
        answer = core_call(...)
        working.finish(answer_markdown)

`reporting_errors` turns whatever escapes into a sentence the user can act on (the core's own
sentence for a `GembotError`, a Slack-specific one for a `SlackApiError`), shown in place of the
"working" message when there is one and privately to the user otherwise, and logs the unexpected.
A database failure is the exception to the core's sentence: that one names the database's address
and the driver's complaint, which are for whoever runs Gembot (the log gets them, in one line),
while the user is told to try again.

Posting survives the usual obstacles: `not_in_channel` makes the bot join the (public) channel and
try once more; a channel it cannot join (private, a DM between people) falls back to the slash
command's `response_url`, which works anywhere the command was typed. Rate limits (429 with
`Retry-After`), 500/503 answers and dropped connections are retried by slack_sdk's retry handlers:
the Web API client's (`bot.app.web_client`) and the `response_url`'s are the same (`retry_handlers`).
An upload whose upload URL fails is tried once more, then the user is told it did not go up.
A file for the asking user's eyes only goes to their DM with the bot (`upload_privately`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from core.errors import DatabaseUnavailable, GembotError
from core.gemini.failures import GeminiNotConfigured
from handlers import text
from handlers.deps import NOT_CONFIGURED
from handlers.text import Block

log = logging.getLogger(__name__)

# Slack's answer when the bot is not in a channel it writes to; joining fixes it for public ones.
NOT_IN_CHANNEL = ("not_in_channel",)
# Answers that mean the bot cannot write here at all: fall back to the response_url if there is one.
CANNOT_WRITE = (
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "restricted_action",
    "cant_update_message",
)
INVITE_ME = "I'm not in this channel: invite me with `/invite @Gembot` and try again."
GENERIC = "Something went wrong on my side (it has been logged); please try again."
DATABASE_TROUBLE = "I couldn't use my database just now (it has been logged); please try again in a minute."
SLACK_TROUBLE = "Slack is having trouble right now (it answered {status}); try again in a minute."
UPLOAD_FAILED = "I couldn't attach {filename}: Slack's file upload failed twice. Try again in a minute."
# What a failing upload URL raises: urllib's HTTPError or URLError (both OSErrors), or slack_sdk's
# SlackRequestError for an answer that is not 200.
UPLOAD_ERRORS = (SlackRequestError, OSError)

_SLACK_ERRORS = {
    "not_in_channel": INVITE_ME,
    "channel_not_found": INVITE_ME,
    "is_archived": "This channel is archived, so I can't write in it.",
    "ratelimited": "Slack is rate-limiting me right now; try again in a minute.",
    "msg_too_long": "The answer was too long for a Slack message.",
    "invalid_blocks": "Slack refused the layout of my answer (that's a bug on my side; it has been logged).",
    "missing_scope": "I lack a Slack permission for this: reinstall the app from its manifest.",
    "not_allowed_token_type": "I lack a Slack permission for this: reinstall the app from its manifest.",
    "invalid_auth": "My Slack token is no longer valid: whoever runs me needs to reinstall the app.",
    "account_inactive": "My Slack token is no longer valid: whoever runs me needs to reinstall the app.",
    "token_revoked": "My Slack token is no longer valid: whoever runs me needs to reinstall the app.",
    "file_uploads_disabled": "File uploads are disabled in this workspace, so I can't attach files.",
    "expired_trigger_id": "That took too long to open; try again.",
}


def slack_error_code(exc: SlackApiError) -> str:
    """The `error` code of a Web API failure ("not_in_channel"), or "" when there is none."""
    response = exc.response
    try:
        return str(response.get("error") or "") if response is not None else ""
    except Exception:  # a response whose body was not JSON
        return ""


def retry_handlers() -> list[RetryHandler]:
    """What a Slack call retries, the Web API client's and a `response_url` post alike: 429 after
    its `Retry-After`, 500 and 503, dropped connections (twice each)."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
        ConnectionErrorRetryHandler(max_retry_count=2),
    ]


def describe_error(exc: BaseException) -> str:
    """A sentence a Slack user can act on, for any failure a handler may meet (already mrkdwn-safe)."""
    if isinstance(exc, GeminiNotConfigured):
        return NOT_CONFIGURED
    if isinstance(exc, DatabaseUnavailable):
        return DATABASE_TROUBLE
    if isinstance(exc, GembotError):
        sentence = str(exc).strip() or type(exc).__name__
        if sentence.split(" ", 1)[0].isalpha():  # "report.png is…" keeps the file's own spelling
            sentence = sentence[0].upper() + sentence[1:]
        if sentence[-1] not in ".!?)":
            sentence += "."
        return text.neutralise(sentence)
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        if isinstance(status, int) and status >= 500:
            return SLACK_TROUBLE.format(status=status)
        code = slack_error_code(exc)
        return _SLACK_ERRORS.get(code, f"Slack refused my answer ({text.escape(code or 'unknown error')}).")
    return GENERIC


class UnknownReplyTo(GembotError):
    """A stored `ReplyTo` this version cannot read (written by a newer Gembot, or damaged)."""


@dataclass(frozen=True)
class ReplyTo:
    """Where the answers to a request go: the channel (and thread), the user who asked, the
    `response_url` Slack gave with a command or an action, and the workspace (team, and
    enterprise on Enterprise Grid) whose token can post there.

    A request's comes from `SlackRequest.reply_to()`. It is also what a bulk job keeps so that
    whichever process finishes the job answers in the same place: `to_json()` writes it as a
    small versioned document (`"v": 1`), `from_json()` reads it back.
    """

    VERSION: ClassVar[int] = 1

    channel: str
    user: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    team: str | None = None
    enterprise: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This destination as a JSON object, with its format version under `v`."""
        return {"v": self.VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplyTo:
        """What `to_json` wrote; raises UnknownReplyTo for another version or a malformed one."""
        if not isinstance(data, Mapping) or data.get("v") != cls.VERSION:
            version = data.get("v") if isinstance(data, Mapping) else None
            raise UnknownReplyTo(f"where to answer was stored in a format I cannot read (v={version!r})")
        if not isinstance(data.get("channel"), str):
            raise UnknownReplyTo("where to answer was stored without a channel")
        optional = {name: _text_or_none(data.get(name)) for name in _OPTIONAL}
        return cls(channel=data["channel"], **optional)


_OPTIONAL = ("user", "thread_ts", "response_url", "team", "enterprise")


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


@dataclass(frozen=True)
class PrivateUpload:
    """Where `Replier.upload_privately` put a file: the user's DM, and whether they asked there."""

    channel: str
    in_place: bool


class Replier:
    """Posts, updates, ephemeral notes and uploads for one request, with Slack's failures handled.

    Messages take mrkdwn: pass model output and user text through `handlers.text` first.
    """

    def __init__(self, client: WebClient, to: ReplyTo, *, logger: logging.Logger | None = None) -> None:
        self.client = client
        self.to = to
        self.log = logger or log
        self.placeholder: Placeholder | None = None
        self._joined = False

    # -- messages ---------------------------------------------------------------------------

    def post(
        self, message: str, *, blocks: list[Block] | None = None, thread_ts: str | None = None
    ) -> Placeholder:
        """Post a message everyone in the channel sees; returns a handle to update it later.

        Falls back to the response_url (as an in-channel message) where the bot cannot post.
        """
        thread = thread_ts or self.to.thread_ts
        try:
            response = self._with_join(
                lambda: self.client.chat_postMessage(
                    channel=self.to.channel, text=message, blocks=blocks, thread_ts=thread
                )
            )
            return Placeholder(self, ts=str(response["ts"]), channel=str(response["channel"]))
        except SlackApiError as exc:
            if slack_error_code(exc) not in CANNOT_WRITE or not self.to.response_url:
                raise
        self._respond(message, blocks=blocks, response_type="in_channel")
        return Placeholder(self, ts=None, channel=self.to.channel)

    def working(self, message: str = "Working on it…", *, header: list[Block] | None = None) -> Placeholder:
        """The visible "working" message that the answer (or the error) will replace."""
        blocks = [*(header or []), text.context(f":hourglass_flowing_sand: {message}")]
        self.placeholder = self.post(message, blocks=blocks)
        return self.placeholder

    def ephemeral(self, message: str, *, blocks: list[Block] | None = None) -> None:
        """A message only the user who asked sees (by response_url when there is one: it works anywhere)."""
        if self.to.response_url:
            try:
                self._respond(message, blocks=blocks, response_type="ephemeral")
                return
            except SlackClientError as exc:
                self.log.info("response_url failed (%s); trying chat.postEphemeral", exc)
        if not self.to.user or not self.to.channel:
            self.log.warning("nowhere to show an ephemeral message: %s", message[:200])
            return
        self.client.chat_postEphemeral(
            channel=self.to.channel,
            user=self.to.user,
            text=message,
            blocks=blocks,
            thread_ts=self.to.thread_ts,
        )

    # -- files ------------------------------------------------------------------------------

    def upload(
        self,
        content: bytes | str,
        *,
        filename: str,
        title: str | None = None,
        comment: str | None = None,
        thread_ts: str | None = None,
        channel: str | None = None,
    ) -> str | None:
        """Share a file in the channel (`files_upload_v2`), or in `channel`; returns its file id.

        On `not_in_channel` the bot joins and tries once more; when it cannot, the user is told
        privately how to invite it, and None is returned. When Slack's upload URL fails, the whole
        upload is tried once more; a second failure is told privately too. Another `channel` (the
        user's DM, see `upload_privately`) is not joined, and gets no thread of this one.
        """
        target = channel or self.to.channel
        here = target == self.to.channel

        def send() -> Any:
            return self.client.files_upload_v2(
                channel=target,
                content=content,
                filename=filename,
                title=title or filename,
                initial_comment=comment,
                thread_ts=thread_ts or (self.to.thread_ts if here else None),
            )

        def attempt() -> Any:
            return self._with_join(send) if here else send()

        try:
            try:
                response = attempt()
            except UPLOAD_ERRORS as exc:
                self.log.info("uploading %s failed (%s); trying once more", filename, exc)
                response = attempt()
        except SlackApiError as exc:
            if slack_error_code(exc) not in CANNOT_WRITE:
                raise
            shown = text.escape(filename)
            self.ephemeral(
                f"I couldn't attach {shown} here. {INVITE_ME}"
                if here
                else f":warning: I couldn't send you {shown} by DM ({text.escape(slack_error_code(exc))})."
            )
            return None
        except UPLOAD_ERRORS as exc:
            self.log.warning("uploading %s failed again: %s", filename, exc)
            self.ephemeral(f":warning: {UPLOAD_FAILED.format(filename=text.escape(filename))}")
            return None
        file = response.get("file") or {}
        return str(file.get("id")) if file.get("id") else None

    def direct_channel(self) -> str:
        """The id of the DM between the user who asked and the bot (`conversations.open`, which
        answers with the same id every time, opening the DM the first time)."""
        if not self.to.user:
            raise SlackClientError("no user to open a DM with")
        response = self.client.conversations_open(users=self.to.user)
        return str(response["channel"]["id"])

    def upload_privately(
        self, content: bytes | str, *, filename: str, title: str | None = None, comment: str | None = None
    ) -> PrivateUpload | None:
        """Share a file with the user who asked alone: in their DM with the bot, wherever they asked.

        Returns where it went (`in_place` when the request came from that DM itself, so the caller
        need not point to it), or None when it did not go up (the user has been told why).
        """
        dm = self.direct_channel()
        if self.upload(content, filename=filename, title=title, comment=comment, channel=dm) is None:
            return None
        return PrivateUpload(channel=dm, in_place=dm == self.to.channel)

    # -- errors -----------------------------------------------------------------------------

    @contextmanager
    def reporting_errors(self) -> Iterator[Replier]:
        """Turn any failure inside the block into a sentence for the user (see the module doc)."""
        try:
            yield self
        except Exception as exc:
            if not isinstance(exc, GembotError | SlackApiError):
                self.log.exception("unexpected failure while answering in Slack")
            elif isinstance(exc, DatabaseUnavailable):
                self.log.warning("could not answer in Slack: %s", exc)
            elif isinstance(exc, SlackApiError):
                self.log.warning("Slack refused a call: %s", slack_error_code(exc) or exc)
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """Show `exc` as a sentence: in place of the "working" message if there is one, else privately."""
        sentence = f":warning: {describe_error(exc)}"
        try:
            if self.placeholder is not None:
                self.placeholder.update(sentence, blocks=[text.section(sentence)])
            else:
                self.ephemeral(sentence)
        except SlackClientError as again:
            # Slack itself is failing: there is no one left to tell but the log.
            self.log.warning("could not tell the user about a failure (%s): %s", again, sentence)

    # -- plumbing ---------------------------------------------------------------------------

    def _with_join(self, call: Any) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            if slack_error_code(exc) not in NOT_IN_CHANNEL or self._joined:
                raise
            try:
                self.client.conversations_join(channel=self.to.channel)
            except SlackApiError as join_error:
                # Private channels and DMs cannot be joined: the original error says it best.
                self.log.info("could not join %s: %s", self.to.channel, slack_error_code(join_error))
                raise exc from None
            self._joined = True
            return call()

    def _respond(
        self, message: str, *, blocks: list[Block] | None, response_type: str, replace: bool = False
    ) -> None:
        if not self.to.response_url:
            raise SlackClientError("no response_url to answer through")
        response = WebhookClient(self.to.response_url, retry_handlers=retry_handlers()).send(
            text=message, blocks=blocks, response_type=response_type, replace_original=replace
        )
        if response.status_code != 200:
            raise SlackClientError(f"the response_url answered {response.status_code}: {response.body[:200]}")


class Placeholder:
    """A message posted earlier (the "working" state) that the answer replaces."""

    def __init__(self, replier: Replier, *, ts: str | None, channel: str) -> None:
        self.replier = replier
        self.ts = ts
        self.channel = channel

    def update(self, message: str, *, blocks: list[Block] | None = None) -> None:
        """Replace the message's text and blocks (through the response_url if it was posted there)."""
        if self.ts is None:
            self.replier._respond(message, blocks=blocks, response_type="in_channel", replace=True)
            return
        self.replier.client.chat_update(channel=self.channel, ts=self.ts, text=message, blocks=blocks or [])

    def update_quietly(self, message: str, *, blocks: list[Block] | None = None) -> None:
        """`update`, for a progress message: one that cannot be updated (Slack rate-limiting, a
        hiccup) is logged and must not stop the job it counts."""
        try:
            self.update(message, blocks=blocks)
        except SlackClientError as exc:
            self.replier.log.info("could not update the progress message: %s", exc)

    def finish(
        self,
        markdown: str,
        *,
        header: list[Block] | None = None,
        footer: list[Block] | None = None,
        filename: str = "answer.md",
        title: str = "The full answer",
    ) -> None:
        """Replace the message with model output (Markdown), neutralised and cut to Block Kit's limits;
        an answer too long for one message shows its beginning and goes up whole as a file."""
        plan = text.plan_message(markdown, header=header, footer=footer)
        self.update(plan.text, blocks=plan.blocks)
        if plan.as_file:
            self.replier.upload(markdown, filename=filename, title=title, thread_ts=self.ts)
