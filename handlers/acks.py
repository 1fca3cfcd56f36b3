"""The acknowledgement of a listener whose work all happens afterwards, in its lazy functions."""

from __future__ import annotations

from slack_bolt import Ack


def acknowledge(ack: Ack) -> None:
    """An empty 200 within Slack's 3 seconds: nothing to say until the lazy work has run."""
    ack()
