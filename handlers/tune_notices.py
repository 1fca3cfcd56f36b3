"""Tuning in words: what `/label tune` answers, the DM its requester gets when the background
re-tune (`bot.retune`) is done, and the line App Home shows per set.

The re-tune itself runs in the serving process, not in a listener; this module only words what it
did and delivers the DM, so that the runtime never decides a sentence.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from core.store import TunedEncoderInfo, TuneJob
from handlers.label_sets import bold
from handlers.replies import Replier, ReplyTo, describe_error
from handlers.text import plural

if TYPE_CHECKING:
    from core.engine import TuneOutcome

log = logging.getLogger(__name__)


def requested(set_name: str, *, settle_seconds: float) -> str:
    """The answer to `/label tune`: when the tune will run, and that a DM follows."""
    when = "now" if settle_seconds < 1 else f"once its edits have settled (about {duration(settle_seconds)})"
    return (
        f":gear: Tuning {bold(set_name)} in the background {when}; I'll DM you when it is done. "
        "Until then `/classify` uses what it used before."
    )


def outcome_line(set_name: str, outcome: TuneOutcome) -> str:
    """The requester's DM once a tune is done and judged on the held-out examples."""
    verdict = outcome.verdict
    figures = (
        f"{verdict.tuned_accuracy:.1%} vs {verdict.plain_accuracy:.1%} plain on "
        f"{plural(verdict.held_out, 'held-out example')}"
    )
    if outcome.kept:
        return f":white_check_mark: Tuned set {bold(set_name)}: {figures} — `/classify` uses it now."
    if verdict.held_out == 0:
        return (
            f"Tuned set {bold(set_name)}, but it has too few examples to judge the tune (a label needs "
            "three or more), so `/classify` stays with the plain model."
        )
    if verdict.better:
        return (
            f"Tuned set {bold(set_name)}: {figures}, but the set changed meanwhile, so I'll tune it "
            "again once the edits have settled."
        )
    return (
        f"Tuned set {bold(set_name)}: no better than the plain model ({figures}), "
        "so `/classify` stays with it."
    )


def cannot_line(set_name: str, exc: BaseException) -> str:
    """The requester's DM when the set cannot be tuned as it is (too few labels, say)."""
    return f":warning: I could not tune set {bold(set_name)}: {describe_error(exc)}"


def gave_up_line(set_name: str, *, attempts: int, exc: BaseException | None = None) -> str:
    """The requester's DM when the tune failed `attempts` times and was given up."""
    why = describe_error(exc) if exc is not None else "The tunes kept stopping before they finished."
    return (
        f":warning: I gave up tuning set {bold(set_name)} after {plural(attempts, 'attempt')}: {why} "
        "`/classify` keeps using what it used before; `/label tune` tries again."
    )


def notify(client: WebClient, user: str, message: str) -> bool:
    """Send `message` to `user` in their DM with the bot; False (logged) when Slack refused."""
    replier = Replier(client, ReplyTo(channel="", user=user))
    try:
        client.chat_postMessage(channel=replier.direct_channel(), text=message)
    except (SlackApiError, SlackClientError) as exc:
        log.warning("could not DM %s about a tune: %s", user, exc)
        return False
    return True


def home_line(tuned: TunedEncoderInfo | None, job: TuneJob | None, *, now: datetime | None = None) -> str:
    """App Home's words on a set's tuning: how it is tuned, and any re-tune pending ("" for none)."""
    parts = []
    if tuned is not None:
        parts.append(f"Tuned on {plural(tuned.examples, 'example')}, {when(tuned.created_at)}")
    if job is not None:
        moment = now or datetime.now(UTC)
        lease = job.lease_until
        if job.owner and lease is not None and _aware(lease) > moment:
            parts.append("being tuned now")
        elif job.last_error:
            parts.append("a re-tune failed and will be tried again")
        else:
            parts.append("a re-tune is pending once edits settle")
    line = " · ".join(parts)
    return line[0].upper() + line[1:] if line else ""


def duration(seconds: float) -> str:
    """A wait in words: "45 seconds", "10 minutes", "2 hours"."""
    if seconds < 90:
        return plural(max(1, round(seconds)), "second")
    if seconds < 90 * 60:
        return plural(round(seconds / 60), "minute")
    return plural(round(seconds / 3600), "hour")


def when(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone (`<!date^…>`), with a UTC fallback."""
    aware = _aware(moment)
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}}|{aware:%Y-%m-%d} UTC>"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
