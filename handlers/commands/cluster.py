"""`/cluster` with texts one per line, or `/cluster last N` for the channel's recent messages.

The answer lists the clusters, largest first, each titled in a few words by Gemini when generation
is configured (one call for all of them; "Cluster 1", "Cluster 2"… when it is not, or when the
call fails: titles never cost the answer), and the 2-D scatter plot goes up as an image.
`k=N` (on the first line, or a line of its own) fixes the number of clusters; without it, k is
chosen by silhouette score.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from slack_bolt import Ack, App, BoltContext

from core import daily_limits
from core.errors import GembotError
from core.gemini.titles import title_groups
from handlers import text
from handlers.acks import acknowledge_or_refuse
from handlers.bounds import too_long_line
from handlers.channel_history import recent_texts
from handlers.deps import Deps, deps_of
from handlers.lines import one_line, split_lines, too_many
from handlers.replies import describe_error
from handlers.request import SlackRequest
from handlers.text import Block

USAGE = (
    "Usage: `/cluster` with two or more texts, one per line (Shift+Enter starts a new line), or "
    "`/cluster last N` for this channel's last N messages. Add `k=N` to choose the number of "
    "clusters, for example `/cluster last 30 k=4`."
)
#: `/cluster last` without a number.
DEFAULT_LAST = 20

_LEADING_K = re.compile(r"^k\s*=\s*(\d+)(?:\s+|$)", re.IGNORECASE)
_K_LINE = re.compile(r"k\s*=\s*(\d+)", re.IGNORECASE)
_LAST = re.compile(r"last(?:\s+(\d+))?(?:\s+k\s*=\s*(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterRequest:
    """What a `/cluster` text asks for: `texts`, or the channel's `last` messages; and `k`.

    `problem` is the sentence to answer instead when the request cannot be served; `asked_last`
    is the N that was typed when it was more than the bot reads (`last` then holds the cap).
    """

    texts: list[str] = field(default_factory=list)
    last: int | None = None
    k: int | None = None
    asked_last: int | None = None
    problem: str | None = None


def parse(raw: str, *, max_lines: int, max_chars: int | None = None) -> ClusterRequest:
    """Read a `/cluster` command's text (see the module doc); never raises.

    `max_chars` bounds each typed line (None: no bound).
    """
    rest = raw.strip()
    k: int | None = None
    while match := _LEADING_K.match(rest):
        k, rest = int(match.group(1)), rest[match.end() :]
    last = _LAST.fullmatch(rest.strip())
    if last:
        count = int(last.group(1)) if last.group(1) else DEFAULT_LAST
        k = int(last.group(2)) if last.group(2) else k
        if count < 2:
            return ClusterRequest(problem="`/cluster last N` needs N of at least 2.")
        capped = min(count, max_lines)
        return ClusterRequest(
            last=capped, k=k, asked_last=count if capped < count else None, problem=_bad_k(k, capped)
        )
    texts: list[str] = []
    for line in split_lines(rest):
        option = _K_LINE.fullmatch(line)
        if option:
            k = int(option.group(1))
        else:
            texts.append(line)
    if len(texts) < 2:
        return ClusterRequest(problem=USAGE)
    problem = (
        too_many(len(texts), max_lines, command="/cluster")
        or (too_long_line(texts, max_chars) if max_chars is not None else None)
        or _bad_k(k, len(texts))
    )
    return ClusterRequest(texts=texts, k=k, problem=problem)


def _bad_k(k: int | None, count: int) -> str | None:
    if k is None or 1 <= k <= count:
        return None
    return f"`k={k}` cannot work with {count} texts: pick k between 1 and {count}, or leave it out."


def ordered_clusters(assignments: np.ndarray) -> list[list[int]]:
    """The members (row numbers) of each cluster, largest cluster first, ties by first member."""
    groups: dict[int, list[int]] = {}
    for row, cluster in enumerate(np.asarray(assignments).reshape(-1)):
        groups.setdefault(int(cluster), []).append(row)
    return sorted(groups.values(), key=lambda members: (-len(members), members[0]))


def cluster_listing(texts: list[str], clusters: list[list[int]], titles: list[str | None]) -> str:
    """The clusters as mrkdwn paragraphs: a bold heading (title or number, size), then its texts."""
    paragraphs = []
    for number, (members, title) in enumerate(zip(clusters, titles, strict=True), 1):
        heading = f"*{number}. {text.neutralise(title)}*" if title else f"*Cluster {number}*"
        size = text.plural(len(members), "text")
        lines = [f"{heading}  ({size})", *(f"• {one_line(texts[row])}" for row in members)]
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def register(app: App) -> None:
    """`/cluster`: the request is checked in the ack; reading, embedding, titling and drawing happen
    in a lazy listener."""
    app.command("/cluster")(ack=acknowledge_cluster, lazy=[answer_cluster])


def _read(deps: Deps, command: dict[str, Any]) -> ClusterRequest:
    settings = deps.settings
    return parse(command.get("text") or "", max_lines=settings.max_lines, max_chars=settings.max_text_chars)


def acknowledge_cluster(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Refuse privately, in the ack, what cannot be clustered."""
    acknowledge_or_refuse(ack, _read(deps_of(context), command).problem)


def answer_cluster(command: dict[str, Any], context: BoltContext) -> None:
    """Cluster the texts (charged to the requester), list the clusters, attach the scatter plot."""
    deps, slack = deps_of(context), SlackRequest.of_command(command, context)
    request = _read(deps, command)
    if request.problem:
        return  # already answered by the ack
    replier, logger = slack.replier, slack.logger
    user = f"<@{slack.user}>"
    with daily_limits.acting_for(deps.meter, slack.actor), replier.reporting_errors():
        if request.last is not None:
            # Read before anything is posted: a channel the bot cannot read is told privately.
            texts = recent_texts(slack.client, slack.channel, request.last)
            if len(texts) < 2:
                replier.ephemeral(
                    f"I found {len(texts) or 'no'} message{'s' if len(texts) != 1 else ''} written "
                    "by people here to cluster; `/cluster last N` needs at least 2."
                )
                return
            what = f"the last {len(texts)} messages in this channel"
            if request.asked_last:
                what += f" (asked for {request.asked_last}; {request.last} is the most I read at once)"
        else:
            texts = request.texts
            what = f"{len(texts)} texts"
        asked = [text.context(f"{user} asked to cluster {what}")]
        working = replier.working(f"Clustering {len(texts)} texts…", header=asked)
        view = deps.engine.cluster(texts, k=request.k)
        clusters = ordered_clusters(view.clustering.assignments)
        titles, note = _titles(deps, [[view.texts[row] for row in members] for members in clusters], logger)
        names = {
            int(view.clustering.assignments[members[0]]): title or f"Cluster {number}"
            for number, (members, title) in enumerate(zip(clusters, titles, strict=True), 1)
        }
        from core.plots import scatter_png  # matplotlib costs a second at import

        png = scatter_png(view.points, view.clustering.assignments, texts=view.texts, titles=names)
        footer = [
            text.context(
                _how(view.clustering.k, view.clustering.chosen_by, view.clustering.silhouette, request.k)
            )
        ]
        if note:
            footer.append(text.context(note))
        listing = cluster_listing(view.texts, clusters, titles)
        summary = f"{text.plural(len(clusters), 'cluster')} among {len(texts)} texts"
        blocks: list[Block] = [*asked, *text.sections(listing), *footer]
        working.update(text.fallback(f"{summary}:\n\n{listing}"), blocks=blocks[: text.MAX_BLOCKS])
        # The answer is shown: a failed upload is told privately instead of replacing it.
        replier.placeholder = None
        replier.upload(png, filename="clusters.png", title=f"Clusters of {len(texts)} texts")


def _titles(
    deps: Deps, groups: list[list[str]], logger: logging.Logger
) -> tuple[list[str | None], str | None]:
    """Gemini's titles for the groups and a note to show when there are none; never raises."""
    untitled: list[str | None] = [None] * len(groups)
    if deps.gemini is None:
        return untitled, None
    try:
        return title_groups(deps.gemini, groups), None
    except GembotError as exc:
        logger.warning("no cluster titles: %s", exc)
        return untitled, f"No titles this time: {describe_error(exc)}"
    except Exception as exc:  # titles are a nicety: whatever happens, the clusters are shown
        logger.exception("no cluster titles")
        return untitled, f"No titles this time: {describe_error(exc)}"


def _how(k: int, chosen_by: str, silhouette: float | None, asked: int | None) -> str:
    if chosen_by == "given":
        how = (
            f"k={k} as asked"
            if asked == k
            else f"k={k} (asked for {asked}; there are only {k} distinct texts)"
        )
    elif chosen_by == "silhouette":
        how = f"k={k} chosen by silhouette score ({silhouette:.2f})" if silhouette is not None else f"k={k}"
    else:
        how = f"k={k}: the only sensible number for these texts"
    return f"Grouped by meaning (k-means on their embeddings), {how}. The plot is attached."
