"""Google Search grounding: the tool that asks for it, and the sources an answer cites.

The sources come from the candidate's `grounding_metadata.grounding_chunks[].web` (a URI and a
title). They are model output and so untrusted: only http(s) URLs are kept, bounded in length and
in number, and their titles are cut short, before a caller shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from google.genai import types

#: Sources kept per answer, the longest URL kept, and the longest title shown.
MAX_SOURCES = 5
MAX_URL_CHARS = 500
MAX_TITLE_CHARS = 120


@dataclass(frozen=True)
class Source:
    """A web page an answer was grounded on: its title (may be empty) and its http(s) URL."""

    title: str
    url: str


def search_tools() -> types.ToolListUnion:
    """The tools of a request that may ground its answer in Google Search."""
    return [types.Tool(google_search=types.GoogleSearch())]


def sources_of(response: types.GenerateContentResponse) -> list[Source]:
    """The usable sources in the first candidate's grounding metadata, in order (maybe none)."""
    if not response.candidates:
        return []
    metadata = response.candidates[0].grounding_metadata
    if metadata is None or not metadata.grounding_chunks:
        return []
    found = []
    for chunk in metadata.grounding_chunks:
        web = chunk.web
        if web is None or not web.uri:
            continue
        source = _checked(web.uri, web.title or "")
        if source is not None:
            found.append(source)
    return found


def merged(*groups: Iterable[Source]) -> tuple[Source, ...]:
    """`groups` joined, each URL once (first seen wins), at most `MAX_SOURCES`."""
    seen: set[str] = set()
    out: list[Source] = []
    for group in groups:
        for source in group:
            if source.url in seen:
                continue
            seen.add(source.url)
            out.append(source)
            if len(out) == MAX_SOURCES:
                return tuple(out)
    return tuple(out)


def _checked(url: str, title: str) -> Source | None:
    url = url.strip()
    if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    title = " ".join(title.split())
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return Source(title=title, url=url)
