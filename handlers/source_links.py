"""The "Sources" line under a grounded answer: the web pages Gemini cited, each showing its address.

The titles and URLs are model output. Core has already kept only http(s) URLs, bounded in number
and length (`core.gemini.grounding`); here they are shown as text, escaped so that nothing pings
and no `<url|label>` can hide where a link goes: Slack links a bare URL with the URL itself as its
visible text.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.gemini.grounding import Source
from handlers import text
from handlers.text import Block

HEADING = "*Sources:*"


def sources_footer(sources: Sequence[Source]) -> list[Block]:
    """A context block listing `sources` as `title (url)`, or nothing when there are none."""
    if not sources:
        return []
    elements = [{"type": "mrkdwn", "text": HEADING}]
    for source in sources[:9]:  # a context block holds at most 10 elements
        url = text.escape(source.url)
        title = text.neutralise(source.title)
        shown = f"{title} ({url})" if title and title != source.url else url
        elements.append({"type": "mrkdwn", "text": shown})
    return [{"type": "context", "elements": elements}]
