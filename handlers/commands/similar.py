"""`/similar` with texts one per line: the most similar pairs in the channel, and the heatmap as an image."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from core import daily_limits
from core.similarity import SimilarPair
from handlers import text
from handlers.acks import acknowledge_or_refuse
from handlers.bounds import too_long_line
from handlers.deps import Deps, deps_of
from handlers.lines import one_line, split_lines, too_many
from handlers.request import SlackRequest
from handlers.text import Block

USAGE = (
    "Usage: `/similar` with two or more texts, one per line (Shift+Enter starts a new line), "
    "for example:\n```/similar The build is broken\nCI fails on main\nLunch is at noon```"
)
#: Pairs shown, best first: enough to see the structure, few enough to read.
PAIRS = 10


def check(raw: str, *, max_lines: int, max_chars: int | None = None) -> str | None:
    """Why a `/similar` text cannot be answered (a sentence for its user), or None when it can.

    `max_chars` bounds each line (None: no bound).
    """
    texts = split_lines(raw)
    if len(texts) < 2:
        return USAGE
    return too_many(len(texts), max_lines, command="/similar") or (
        too_long_line(texts, max_chars) if max_chars is not None else None
    )


def pair_blocks(texts: list[str], pairs: list[SimilarPair]) -> list[Block]:
    """One section per pair, best first: rank, cosine, and the two texts with their numbers."""
    return [
        text.section(
            f"*{rank}.* `{pair.score:.2f}`  #{pair.i + 1} {one_line(texts[pair.i])}  ↔  "
            f"#{pair.j + 1} {one_line(texts[pair.j])}"
        )
        for rank, pair in enumerate(pairs, 1)
    ]


def register(app: App) -> None:
    """`/similar`: the texts are checked in the ack; embedding and drawing happen in a lazy listener."""
    app.command("/similar")(ack=acknowledge_similar, lazy=[answer_similar])


def _problem(deps: Deps, command: dict[str, Any]) -> str | None:
    settings = deps.settings
    return check(command.get("text") or "", max_lines=settings.max_lines, max_chars=settings.max_text_chars)


def acknowledge_similar(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Refuse privately, in the ack, what cannot be compared."""
    acknowledge_or_refuse(ack, _problem(deps_of(context), command))


def answer_similar(command: dict[str, Any], context: BoltContext) -> None:
    """Embed the texts (charged to the requester), list the most similar pairs, attach the heatmap."""
    deps, request = deps_of(context), SlackRequest.of_command(command, context)
    if _problem(deps, command):
        return  # already answered by the ack
    texts = split_lines(command.get("text") or "")
    replier = request.replier
    asked = [text.context(f"<@{request.user}> compared {len(texts)} texts")]
    with daily_limits.acting_for(deps.meter, request.actor), replier.reporting_errors():
        working = replier.working(f"Comparing {len(texts)} texts…", header=asked)
        result = deps.engine.similarity(texts, pairs=PAIRS)
        # Imported here: matplotlib costs a second at import, and most requests never draw.
        from core.plots import heatmap_png

        png = heatmap_png(result.matrix, [f"#{n} {t}" for n, t in enumerate(result.texts, 1)])
        total = len(texts) * (len(texts) - 1) // 2
        shown = len(result.pairs)
        best = result.pairs[0]
        summary = (
            f"Most similar: {one_line(result.texts[best.i], 80)} ↔ "
            f"{one_line(result.texts[best.j], 80)} ({best.score:.2f})"
        )
        footer = text.context(
            ("All pairs" if shown == total else f"The {shown} most similar of {total} pairs")
            + ", by cosine similarity of their embeddings (1 = same meaning). "
            "The heatmap of every pair is attached."
        )
        working.update(
            summary,
            blocks=[
                *asked,
                text.section("*Most similar pairs*"),
                *pair_blocks(result.texts, result.pairs),
                footer,
            ],
        )
        # The answer is shown: a failed upload is told privately instead of replacing it.
        replier.placeholder = None
        replier.upload(png, filename="similarity.png", title=f"Similarity of {len(texts)} texts")
