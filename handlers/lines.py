"""Texts typed one per line in a slash command (`/similar`, `/cluster`), and texts shown back on one line.

Slack keeps the newlines a user types with Shift+Enter in a command's `text`, so each non-blank
line is one text. Like every text Slack sends, it arrives escaped (`&amp;`, `&lt;`, `&gt;`, and
`<@U123|name>` sequences when the command escapes mentions): `plain_text` undoes that, so that what
is embedded is what the user typed. Texts shown back in a message are flattened and shortened
first, then neutralised: whatever a user (or a channel's history) wrote can ping no one when the
bot repeats it.
"""

from __future__ import annotations

import html
import re

from handlers import text

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LABELLED = re.compile(r"<![^>|]*\|([^>]*)>")  # <!subteam^S1|@team>, <!date^...|fallback>
_OTHER_SPECIAL = re.compile(r"<![^>]*>")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^>|]*)(?:\|([^>]*))?>")


def plain_text(mrkdwn: str) -> str:
    """A text from Slack as people read it: `<@U1|ana>` → `@ana` (`@someone` without a name),
    `<#C1|ops>` → `#ops`, `<!here>` → `@here`, `<https://x|label>` → `label`, `&amp;` → `&`."""
    out = _MENTION.sub(lambda m: "@" + (m.group(2) or "someone").lstrip("@"), mrkdwn)
    out = _CHANNEL.sub(lambda m: "#" + (m.group(2) or "channel"), out)
    out = _SPECIAL.sub(lambda m: "@" + m.group(1), out)
    out = _LABELLED.sub(lambda m: m.group(1), out)
    out = _OTHER_SPECIAL.sub("", out)
    out = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), out)
    return html.unescape(out).strip()


def split_lines(raw: str) -> list[str]:
    """The non-blank lines of a command's text, in order, each as people read it (`plain_text`)."""
    lines = (plain_text(line) for line in raw.splitlines())
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
