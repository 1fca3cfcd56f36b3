"""Texts typed one per line in a slash command (`/similar`, `/cluster`), and texts shown back on one line.

Slack keeps the newlines a user types with Shift+Enter in a command's `text`, so each non-blank
line is one text. Like every text Slack sends, it arrives escaped (`&amp;`, `&lt;`, `&gt;`, and
`<@U123|name>` sequences when the command escapes mentions): `text.plain` undoes that, so that what
is embedded is what the user typed. Texts shown back in a message are flattened and shortened
first, then neutralised: whatever a user (or a channel's history) wrote can ping no one when the
bot repeats it.
"""

from __future__ import annotations

from handlers import text


def split_lines(raw: str) -> list[str]:
    """The non-blank lines of a command's text, in order, each as people read it (`text.plain`)."""
    lines = (text.plain(line) for line in raw.splitlines())
    return [line for line in lines if line]


def too_many(count: int, limit: int, *, command: str) -> str | None:
    """The sentence refusing `count` texts when it is over `limit`, else None."""
    if count <= limit:
        return None
    return (
        f"`{command}` takes at most {limit} texts at once, and you sent {count} lines: "
        f"split them over several commands (whoever runs me can raise GEMBOT_MAX_LINES)."
    )


def one_line(raw: str, width: int = 150) -> str:
    """`raw` on one line, cut to `width` characters with an ellipsis, made safe to post (mrkdwn)."""
    flat = " ".join(raw.split())
    if len(flat) > width:
        flat = flat[: width - 1].rstrip() + "…"
    return text.neutralise(flat)
