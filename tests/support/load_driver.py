"""Signed `/classify` requests sent with a fixed number in flight, and what Slack received for each.

Request i is a distinct text (so each needs its own embedding) typed in its own channel, so the
Slack stand-in's calls can be counted per request: one `chat.postMessage` (the "working" message)
and one `chat.update` (the answer) each, no more, no fewer. `tests/bot/test_load_small.py` runs it
small in the suite; `benchmarks/load.py` runs it at full size and prints the figures.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.store import ExampleInput, Store
from tests.support.slack_harness import SlackSender

TEAM = "T0STANDIN"
SET = "default"
EXAMPLES = {
    "billing": [
        "I was charged twice on my invoice",
        "refund the payment taken from my card",
        "my invoice shows a wrong charge",
    ],
    "shipping": [
        "where is my package delivery",
        "the parcel delivery is late",
        "the courier lost my package",
    ],
}
_TEMPLATES = ("I was charged twice on invoice {n}", "parcel {n} has not been delivered yet")


class _Calls(Protocol):
    def calls(self, method: str | None = None) -> Sequence[Any]: ...


def seed(database_url: str) -> None:
    """The label set every request classifies against (two labels, three examples each)."""
    store = Store.open(database_url)
    try:
        items = [ExampleInput(label, text) for label, texts in EXAMPLES.items() for text in texts]
        store.add_examples(TEAM, SET, items)
    finally:
        store.close()


def texts(count: int, *, start: int = 0) -> list[str]:
    """`count` distinct texts, alternating between the two labels."""
    return [_TEMPLATES[n % 2].format(n=n) for n in range(start, start + count)]


def channel(tag: str, n: int) -> str:
    return f"C{tag}{n:06d}"


@dataclass(frozen=True)
class Answers:
    """Per channel: the `chat.postMessage` and `chat.update` calls Slack answered 200, and when the
    last update arrived (`time.monotonic()`, comparable across processes on one machine)."""

    posts: dict[str, int]
    updates: dict[str, int]
    last_update: float | None


def answers(slack: _Calls, prefix: str) -> Answers:
    """Count what reached `slack` for channels starting with `prefix` (see `Answers`)."""
    posts = Counter(
        c.params.get("channel") for c in slack.calls("chat.postMessage") if c.status == 200 and c.ok
    )
    updates = [c for c in slack.calls("chat.update") if c.status == 200 and c.ok]
    counted = Counter(c.params.get("channel") for c in updates)
    mine = [c.time for c in updates if str(c.params.get("channel", "")).startswith(prefix)]
    return Answers(
        posts={k: v for k, v in posts.items() if str(k).startswith(prefix)},
        updates={k: v for k, v in counted.items() if str(k).startswith(prefix)},
        last_update=max(mine) if mine else None,
    )


@dataclass
class LoadResult:
    """What a run measured: each request's ack (status, seconds), and per channel what Slack got."""

    tag: str
    statuses: list[int]
    ack_seconds: list[float]
    started: float
    answers: Answers
    channels: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.ack_seconds)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.ack_seconds)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def to_last_answer(self) -> float | None:
        last = self.answers.last_update
        return None if last is None else last - self.started

    def problems(self, *, ack_limit: float = 3.0) -> list[str]:
        """Everything that broke the rules: acks not 200 or too slow, answers missing or doubled."""
        found = []
        slow = [s for s in self.ack_seconds if s >= ack_limit]
        bad = [s for s in self.statuses if s != 200]
        if bad:
            found.append(f"{len(bad)} acks were not 200: {Counter(bad)}")
        if slow:
            found.append(f"{len(slow)} acks took {ack_limit:g} s or more (slowest {max(slow):.2f} s)")
        for name, got in (("chat.postMessage", self.answers.posts), ("chat.update", self.answers.updates)):
            wrong = {c: got.get(c, 0) for c in self.channels if got.get(c, 0) != 1}
            if wrong:
                found.append(
                    f"{len(wrong)} requests got other than one {name}: {dict(list(wrong.items())[:5])}"
                )
        return found


def run(
    events_url: str,
    *,
    slack: _Calls,
    count: int,
    in_flight: int,
    tag: str,
    response_url: str,
    start: int = 0,
    wait: float = 60.0,
    counts: Callable[[str], Answers] | None = None,
) -> LoadResult:
    """Send `count` signed `/classify` requests to `events_url`, `in_flight` at a time, then wait
    (up to `wait` seconds) until each has its answer, plus a moment for any duplicate to show.

    `counts(prefix)` reads the stand-in (default: `answers(slack, prefix)`; a stand-in in another
    process passes its own, so the calls are counted where they are).
    """
    sender = SlackSender(events_url, timeout=30)
    items = list(enumerate(texts(count, start=start), start=start))
    channels = [channel(tag, n) for n, _ in items]
    count_answers = counts or (lambda prefix: answers(slack, prefix))
    prefix = "C" + tag

    def send(item: tuple[int, str]) -> tuple[int, float]:
        n, content = item
        reply = sender.command("/classify", content, channel_id=channel(tag, n), response_url=response_url)
        return reply.status, reply.elapsed

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        acks = list(pool.map(send, items))
    deadline = time.monotonic() + wait
    seen = count_answers(prefix)
    while len(seen.updates) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = count_answers(prefix)
    time.sleep(0.5)  # a duplicate answer would come right after the first
    return LoadResult(
        tag=tag,
        statuses=[status for status, _ in acks],
        ack_seconds=[seconds for _, seconds in acks],
        started=started,
        answers=count_answers(prefix),
        channels=channels,
    )
