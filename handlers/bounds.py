"""How much text a person may hand the bot at once, and the sentence that refuses more.

Every text a person types to the bot (a `/classify` or `/ask` text, a `/label add` example, each
line of `/similar` and `/cluster`, a question in a mention or a DM) is at most
GEMBOT_MAX_TEXT_CHARS characters (default 4,000): a Slack message may hold 40,000, and such a text
would cost a long embedding or generation call, only the start of which an embedder reads anyway.
Commands refuse it in the ack, privately; messages get the sentence in their thread. The same
bound holds wherever else a text reaches the bot: the "Add as label example" shortcut refuses a
longer message privately, and a CSV sent by DM (to import or to classify) with a longer text in
any row is refused whole, naming the rows, before anything is stored or classified. The other
bounds live with their surfaces: GEMBOT_MAX_LINES (`handlers.lines`), GEMBOT_MAX_IMAGE_BYTES
(`handlers.attachments`) and GEMBOT_MAX_CSV_ROWS (`handlers.bulk`).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import TextsTooLong

SETTING = "GEMBOT_MAX_TEXT_CHARS"


def too_long(
    content: str,
    limit: int,
    *,
    what: str = "Your text",
    allowed: str = "I take at most",
    fix: str = "shorten it",
) -> str | None:
    """The sentence refusing `content` when it has more than `limit` characters, else None:
    "`what` is N characters long, and `allowed` `limit`: `fix` (whoever runs me can raise ...)".

    Measure the text as it will be used (Slack's escapes undone by `handlers.text.plain`), so that
    `&amp;` counts as the one character it stands for.
    """
    if len(content) <= limit:
        return None
    return (
        f"{what} is {len(content):,} characters long, and {allowed} {limit:,}: {fix} "
        f"(whoever runs me can raise {SETTING})."
    )


def too_long_line(texts: Sequence[str], limit: int) -> str | None:
    """The sentence refusing the first of `texts` (lines of a command) over `limit`, else None."""
    for number, content in enumerate(texts, 1):
        problem = too_long(content, limit, what=f"Line {number}")
        if problem:
            return problem
    return None


def too_long_rows(exc: TextsTooLong, *, so: str) -> str:
    """The sentence refusing a file whose rows `exc` names; `so` says what was therefore not done
    ("I imported nothing")."""
    return (
        f"{exc.name} has {exc.texts} longer than {exc.limit:,} characters in {exc.where}, so {so}: "
        f"shorten {exc.them} (whoever runs me can raise {SETTING})."
    )
