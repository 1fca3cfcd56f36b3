"""Acknowledgements: Slack's 3 seconds are for these; the work happens afterwards, in lazy functions."""

from __future__ import annotations

from slack_bolt import Ack


def acknowledge(ack: Ack) -> None:
    """An empty 200 within Slack's 3 seconds: nothing to say until the lazy work has run."""
    ack()


def acknowledge_or_refuse(ack: Ack, refusal: str | None) -> None:
    """An empty 200, or `refusal` (usage, a mistake) shown privately to the user who typed the command."""
    if refusal:
        ack(text=refusal, response_type="ephemeral")
    else:
        ack()
