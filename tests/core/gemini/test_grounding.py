"""Google Search grounding through the real google-genai SDK against the Gemini stand-in: the tool
goes on the wire only when asked for, and the answer's sources are read from the grounding
metadata (plain and streamed), checked and bounded."""

from __future__ import annotations

import urllib.request

from core.gemini.generation import generate, generate_stream
from core.gemini.grounding import MAX_SOURCES, MAX_URL_CHARS, Source, merged
from core.gemini.titles import title_groups
from tests.support.gemini import GeminiStandIn
from tests.support.gemini.generate_api import DEFAULT_SOURCES
from tests.support.gemini_support import gemini_client

EXPECTED = tuple(Source(title=title, url=uri) for uri, title in DEFAULT_SOURCES)


def test_without_grounding_no_tool_is_sent_and_no_sources_come_back(gemini_standin: GeminiStandIn) -> None:
    answer = generate(gemini_client(gemini_standin), "What is new in Python 3.14?")
    assert answer.sources == ()
    (sent,) = gemini_standin.requests("generate")
    assert "tools" not in sent.json


def test_grounding_sends_the_search_tool_and_reads_the_sources(gemini_standin: GeminiStandIn) -> None:
    answer = generate(gemini_client(gemini_standin), "What is new in Python 3.14?", grounding=True)
    (sent,) = gemini_standin.requests("generate")
    assert sent.json["tools"] == [{"googleSearch": {}}]
    assert answer.text == "echo: What is new in Python 3.14?"
    assert answer.sources == EXPECTED


def test_a_streamed_answer_has_its_sources_from_the_last_chunk(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.stream_pace(4, 0.0)
    stream = generate_stream(
        gemini_client(gemini_standin), "Tell me what happened in the news today", grounding=True
    )
    pieces = list(stream)
    assert len(pieces) == 4
    assert stream.answer.sources == EXPECTED
    (sent,) = gemini_standin.requests("generate")
    assert sent.action == "streamGenerateContent" and sent.json["tools"] == [{"googleSearch": {}}]
    # Only the last event carries the metadata, as Google sends it.
    events = [e for e in sent_events(gemini_standin) if e]
    assert ["groundingMetadata" in e for e in events] == [False, False, False, True]


def sent_events(standin: GeminiStandIn) -> list[str]:
    """The server-sent events of a fresh streamed request, read raw."""
    request = urllib.request.Request(
        f"{standin.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        data=b'{"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}],'
        b' "tools": [{"googleSearch": {}}]}',
        headers={"Content-Type": "application/json", "x-goog-api-key": standin.api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return [line for line in body.split("\r\n\r\n") if line.strip()]


def test_hostile_and_over_long_urls_are_dropped(gemini_standin: GeminiStandIn) -> None:
    long = "https://example.com/" + "a" * MAX_URL_CHARS
    gemini_standin.ground_with(
        [
            ("javascript:alert(document.cookie)", "Click me"),
            ("slack://channel?id=C1", "Open Slack"),
            (long, "Too long"),
            ("https://good.example/page", "A  good\n page"),
            ("https://good.example/page", "The same page again"),
            ("http:///no-host", "No host"),
            ("https://x.example/with space", "Spaced"),
        ]
    )
    answer = generate(gemini_client(gemini_standin), "anything", grounding=True)
    assert answer.sources == (Source(title="A good page", url="https://good.example/page"),)


def test_sources_are_bounded_in_number_and_title_length() -> None:
    many = [Source(title="t", url=f"https://example.com/{i}") for i in range(MAX_SOURCES + 3)]
    assert merged(many[:2], many) == tuple(many[:MAX_SOURCES])


def test_cluster_titles_never_ground(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.reply('{"titles": ["Backups"]}', times=1)
    assert title_groups(gemini_client(gemini_standin), [["backup failed", "backup failed again"]]) == [
        "Backups"
    ]
    (sent,) = gemini_standin.requests("generate")
    assert "tools" not in sent.json
