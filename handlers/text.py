"""Text to and from Slack: Slack's markup made plain, model output made harmless, Markdown made
mrkdwn, long text cut to Block Kit's limits.

Every text a person sends the bot (a command's text, a message, a channel's history) goes through
`plain` once, so that `/classify`, `/similar`, `/cluster`, `/label add` and the shortcut embed the
same message as the same text.

Gemini's answers go to Slack as standard Markdown (streamed messages, `markdown` blocks) through
`safe_markdown`; Gembot's own Markdown for section blocks (an evaluation) through `to_mrkdwn`; plain
text through `neutralise`. Slack's control sequences all start with `<` (`<!channel>`, `<!here>`,
`<@U123>`, `<#C123>`, `<!subteam^S123>`), so escaping `&`, `<` and `>` as Slack documents makes
every one of them show as text and ping no one; the only `<...>` left are the links `to_mrkdwn`
builds itself, from http(s) URLs. The bare words `@channel`, `@here` and `@everyone` get a
zero-width space after the `@`.

Block Kit holds at most 3,000 characters in a section and 50 blocks in a message; `split_text` and
`plan_message` keep within them, and hand anything longer over to be sent as a file. A `markdown`
block (and a streamed message) holds 12,000 characters (`MARKDOWN_LIMIT`): a longer answer carries
on in the next message (`handlers.streaming`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
# Beyond this many characters an answer is no longer pleasant to read in a message (and Slack's
# own markdown block stops at 12,000): it goes up as a file, with its beginning in the message.
MESSAGE_LIMIT = 12_000
# The `text` that accompanies blocks is what notifications and screen readers show.
FALLBACK_LIMIT = 2_900
ZERO_WIDTH_SPACE = "\u200b"

_BROADCAST_WORDS = re.compile(r"(?<![\w.])@(channel|here|everyone)\b", re.IGNORECASE)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s()<>|]+)\)")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_BOLD_MARK = "\x01"
# Model output is converted for a message only this far (the message shows at most MESSAGE_LIMIT
# characters; the whole answer goes up as a file): conversion time stays bounded whatever it wrote.
CONVERT_LIMIT = 16_000


_SEQUENCE = re.compile(r"<([^<>\n]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCASTS = frozenset({"here", "channel", "everyone"})


def plain(slack_text: str) -> str:
    """A text from Slack as people read it, stripped: the one inverse of Slack's wire format.

    `<@U1|ana>` → `@ana`, `<@U1>` → `@U1`; `<#C1|ops>` → `#ops`, `<#C1>` → `#C1`; `<!here>` →
    `@here` (also `channel`, `everyone`); `<!subteam^S1|@team>` → `@team`, `<!subteam^S1>` → `@S1`;
    `<!date^…|Feb 18>` → `Feb 18` (other `<!…>` without a label → nothing); `<https://x|label>` →
    `label`, `<https://x>` → `https://x`, `<mailto:a@b>` → `a@b`. Then Slack's three escapes
    (`&amp;`, `&lt;`, `&gt;`, and no others: Slack escapes nothing else) are undone in one pass,
    so `plain(escape(t)) == t.strip()` for any `t`. The result is plain text: shown in Slack again it
    goes through `neutralise`, so nothing here can ping anyone later.
    """
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], _SEQUENCE.sub(_plain_sequence, slack_text)).strip()


def _plain_sequence(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        return "@" + (label.lstrip("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label.lstrip("#") or target[1:])
    if target.startswith("!"):
        kind, _, argument = target[1:].partition("^")
        if kind in _BROADCASTS:
            return "@" + kind
        if kind == "subteam":
            return "@" + (label.lstrip("@") or argument)
        return label
    return label or target.removeprefix("mailto:")


def escape(text: str) -> str:
    """Slack's three escapes (`&`, `<`, `>`): the text shows as written and no `<...>` sequence is live."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutralise(text: str) -> str:
    """`text` (model output, or anything a user typed) made safe to post: it can ping no one.

    `<!channel>`, `<!here>`, `<!everyone>`, `<@U…>`, `<#C…>` and `<!subteam^…>` are escaped so
    that they show as typed; the bare words @channel/@here/@everyone get a zero-width space.
    """
    return _BROADCAST_WORDS.sub(lambda m: "@" + ZERO_WIDTH_SPACE + m.group(1), escape(text))


def to_mrkdwn(markdown: str) -> str:
    """Gemini's Markdown as Slack mrkdwn, neutralised (see `neutralise`).

    Headings become bold lines, `**bold**` `*bold*`, `*italic*` `_italic_`, `~~x~~` `~x~`,
    bullets `•`, `[text](https://…)` `text (<https://…>)` (the real URL shows); code spans and
    blocks are kept as they are (a fence's language name is dropped: Slack would show it as code).
    """
    out: list[str] = []
    position = 0
    for fence in _FENCE.finditer(markdown):
        out.append(_prose(markdown[position : fence.start()]))
        out.append(_code_block(fence.group()))
        position = fence.end()
    out.append(_prose(markdown[position:]))
    return "".join(out)


def _code_block(block: str) -> str:
    body = block[3:]
    body = body[:-3] if body.endswith("```") and len(body) >= 3 else body
    first, newline, rest = body.partition("\n")
    if newline and re.fullmatch(r"[\w+#.-]*", first.strip()):
        body = rest
    return "```" + escape(body.strip("\n")) + "```"


def _prose(text: str) -> str:
    text = neutralise(text)
    text = _HEADING.sub(lambda m: _BOLD_MARK + m.group(1).replace("**", "") + _BOLD_MARK, text)
    text = _BULLET.sub(lambda m: m.group(1) + "• ", text)
    pieces = _INLINE_CODE.split(text)
    for index in range(0, len(pieces), 2):  # the odd ones are code spans
        piece = pieces[index]
        piece = _LINK.sub(_link, piece)
        piece = _paired(piece, "**", _BOLD_MARK)
        piece = _paired(piece, "__", _BOLD_MARK)
        piece = _ITALIC.sub(lambda m: "_" + m.group(1) + "_", piece)
        piece = _paired(piece, "~~", "~")
        pieces[index] = piece
    return "".join(pieces).replace(_BOLD_MARK, "*")


def _link(match: re.Match[str]) -> str:
    """`[text](url)` as the text followed by the URL it really goes to: a model's (or a prompt
    injection's) `[your invoice](https://evil…)` shows where it leads."""
    label, url = match.group(1), match.group(2)
    if label.strip().rstrip("/") in (url.rstrip("/"), url.split("://", 1)[-1].rstrip("/")):
        return f"<{url}>"
    return f"{label} (<{url}>)"


def _paired(text: str, delimiter: str, mark: str) -> str:
    r"""`text` with each `DELIM content DELIM` on one line (content starting and ending with a
    non-space) rewritten as `mark content mark`, pairing left to right.

    What `DELIM(?=\S)(.+?)(?<=\S)DELIM` would do, in time linear in the line rather than
    quadratic: that regex takes seconds on 32,000 characters of `__a ` repeated.
    """
    if delimiter not in text:
        return text
    return "".join(_paired_line(line, delimiter, mark) for line in text.splitlines(keepends=True))


def _paired_line(line: str, delimiter: str, mark: str) -> str:
    width = len(delimiter)
    found: list[int] = []
    at = line.find(delimiter)
    while at != -1:
        found.append(at)
        at = line.find(delimiter, at + 1)
    # Where a closing delimiter may stand: after a non-space.
    closers = [p for p in found if p > 0 and not line[p - 1].isspace()]
    out: list[str] = []
    position = 0
    for start in found:
        if start < position:
            continue
        first = start + width
        if first >= len(line) or line[first].isspace():
            continue
        k = bisect.bisect_left(closers, first + 1)
        if k == len(closers):
            break  # no closer after this opener, so none after any later one either
        end = closers[k]
        out.append(line[position:start] + mark + line[first:end] + mark)
        position = end + width
    out.append(line[position:])
    return "".join(out)


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """`text` (mrkdwn) in pieces of at most `limit` characters, cut where a reader would cut.

    Cuts fall at a paragraph break if one is in the second half of the piece, else at a line
    break, else at a space, else anywhere; never inside an `&amp;`-style escape or a `<link|text>`.
    A code block cut in two is closed at the end of one piece and reopened in the next.
    """
    if limit < 16:
        raise ValueError("limit is too small to split text sensibly")
    pieces: list[str] = []
    rest = text.strip("\n")
    while len(rest) > limit:
        cut, skip = _cut(rest, limit - 4)  # room to close a code block
        piece, rest = rest[:cut].rstrip(), rest[cut + skip :]
        if piece.count("```") % 2:
            piece += "```"
            rest = "```" + rest
        if piece.strip():
            pieces.append(piece)
    if rest.strip():
        pieces.append(rest)
    return pieces


def _cut(text: str, limit: int) -> tuple[int, int]:
    """Where to cut `text` at or before `limit`, and how many separator characters to drop there."""
    window = text[: limit + 1]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator, limit // 2, limit)
        if at > 0:
            cut, skip = at, len(separator)
            break
    else:
        cut, skip = limit, 0
    # Not inside an escape (`&amp;`) or a link (`<https://…|text>`): move the cut before it.
    amp = text.rfind("&", max(0, cut - 6), cut)
    if amp >= 0 and ";" not in text[amp:cut]:
        cut, skip = amp, 0
    opened = text.rfind("<", 0, cut)
    if opened > 0 and ">" not in text[opened:cut]:
        cut, skip = opened, 0
    return max(cut, 1), skip


def section(text: str) -> Block:
    """A mrkdwn section block (`text` must already be mrkdwn, within 3,000 characters)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    """A context block: the small grey line under or over a message's body."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def sections(text: str) -> list[Block]:
    """`text` (mrkdwn) as as many section blocks as it needs."""
    return [section(piece) for piece in split_text(text)]


def fallback(text: str, limit: int = FALLBACK_LIMIT) -> str:
    """The `text` to send with blocks: the start of the message, for notifications."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut, _ = _cut(text, limit - 1)
    return text[:cut].rstrip() + "…"


@dataclass(frozen=True)
class MessagePlan:
    """How a long answer is shown: `blocks` and `text` for the message, and whether the whole answer
    also goes up as a file (`as_file`), when it is too long for one message."""

    blocks: list[Block]
    text: str
    as_file: bool


def plan_message(
    markdown: str,
    *,
    header: list[Block] | None = None,
    footer: list[Block] | None = None,
    file_note: str = "The full answer is attached as a file.",
) -> MessagePlan:
    """Model output (Markdown) as one Block Kit message between `header` and `footer` blocks.

    Up to `MESSAGE_LIMIT` characters and 50 blocks it is all there, in sections of at most 3,000
    characters; beyond that the message shows its beginning and `as_file` says to attach the
    whole text as a file.
    """
    header, footer = list(header or []), list(footer or [])
    mrkdwn = to_mrkdwn(markdown[:CONVERT_LIMIT])
    body = sections(mrkdwn)
    fits = len(markdown) <= CONVERT_LIMIT and len(mrkdwn) <= MESSAGE_LIMIT
    if fits and len(header) + len(body) + len(footer) <= MAX_BLOCKS:
        return MessagePlan(header + body + footer, fallback(mrkdwn), as_file=False)
    preview = split_text(mrkdwn, SECTION_LIMIT - 2)[0] + " …"
    blocks = [*header, section(preview), context(file_note), *footer][:MAX_BLOCKS]
    return MessagePlan(blocks, fallback(mrkdwn), as_file=True)


def plural(n: int, word: str) -> str:
    """`n` and `word`, the word in the plural unless `n` is 1 ("1 example", "2,500 examples")."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# -- Markdown for Slack's `markdown` block and streamed messages ------------------------------

#: What one `markdown` block, and one streamed message, holds (Slack's documented limit).
MARKDOWN_LIMIT = 12_000
# Any inline link, whatever its scheme: in a markdown block a `[label](slack://…)` would hide it too.
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:[^\s()<>|]|\([^\s()<>|]*\))+)\)")
_LINK_OPEN = re.compile(r"\[[^\]\n]*+(?:\](?:\((?:[^\s()<>|]++|\([^\s()<>|]*+\)?)*+)?)?")
_TRAILING_AT_WORD = re.compile(r"@\w*\Z")
# How far back an unfinished `[label](url` is held while streaming; a stray `[` further back is let go.
_LINK_HOLD = 600


def safe_markdown(markdown: str) -> str:
    """Model output (standard Markdown) made safe for a `markdown` block or a streamed message.

    Neutralised as `neutralise` does (Slack's `<...>` sequences escaped, so nothing pings; the
    bare @channel/@here/@everyone broken by a zero-width space), and each `[label](target)`
    shown as `label (target)`, so a link says where it goes (and a `javascript:` or `slack://`
    target is plain text, not a link). A prefix of an answer cut at
    `stable_end` renders as a prefix of the whole answer's rendering, which is what lets an answer
    be streamed piece by piece.
    """
    return _MD_LINK.sub(_markdown_link, neutralise(markdown))


def _markdown_link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if label.strip().rstrip("/") in (url.rstrip("/"), url.split("://", 1)[-1].rstrip("/")):
        return url
    return f"{label} ({url})"


def stable_end(markdown: str) -> int:
    """Where `markdown` (an answer still being written) can be cut so that what comes later cannot
    change how the part before renders: before a trailing `@word` (it may grow into `@here`) and
    before an unfinished `[label](url` on the last line (it may become a link)."""
    end = len(markdown)
    at = _TRAILING_AT_WORD.search(markdown)
    if at:
        end = at.start()
    start = max(markdown.rfind("\n", 0, end) + 1, end - _LINK_HOLD)
    # A `[` that may still open a link has at most one `]` after it (the label's end); of the
    # `[`s between the same two `]`s, the first decides for all. So at most two are tried.
    last = markdown.rfind("]", start, end)
    before = markdown.rfind("]", start, last) if last != -1 else -1
    for low in (before + 1 if before != -1 else start, last + 1 if last != -1 else end):
        bracket = markdown.find("[", low, end)
        if bracket != -1 and _LINK_OPEN.fullmatch(markdown, bracket, end):
            return bracket
    return end


def markdown_block(markdown: str) -> Block:
    """A `markdown` block for text already made safe (`safe_markdown`), within MARKDOWN_LIMIT."""
    return {"type": "markdown", "text": markdown}


def split_markdown(markdown: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """`markdown` in pieces of at most `limit` characters, cut where a reader would (`split_text`)."""
    return split_text(markdown, limit)
