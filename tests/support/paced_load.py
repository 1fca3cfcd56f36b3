"""Signed `/classify` requests sent at a steady pace while a test breaks something, and what each got.

`tests/support/load_driver.py` sends a fixed batch as fast as it can; a fault test needs traffic that keeps
flowing while the fault comes and goes, and to know when each request was sent. Here request n is
sent at `start + n * pace` (up to `in_flight` at once) until `stop()`, in its own channel with its
own `response_url`, so every answer can be traced back to it:

    load = PacedLoad(server.events_url, slack, pace=0.1, in_flight=6).start()
    ...break something, mend it...
    load.stop()
    for outcome in load.outcomes(wait=60): ...

A request's answer is the "working" message (`chat.postMessage`) updated once (`chat.update`), or,
when it failed before posting one, a single private note through its `response_url`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from tests.support import load_driver
from tests.support.slack_harness import SlackSender
from tests.support.slack_standin import SlackStandIn

TAG = "PACE"
# Texts the seeded examples (`load_driver.EXAMPLES`) label confidently with the Gemini stand-in's
# embeddings: even n billing, odd n shipping. The number makes each one new to the cache.
TEMPLATES = {"billing": "I was charged twice on invoice {n}", "shipping": "the parcel delivery {n} is late"}


def expected_label(n: int) -> str:
    return "billing" if n % 2 == 0 else "shipping"


def text_of(n: int) -> str:
    return TEMPLATES[expected_label(n)].format(n=n)


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent, its ack, and every message Slack got for it."""

    n: int
    text: str
    sent_at: float  # when the request went out (`time.monotonic()`)
    status: int
    ack_seconds: float
    ack_body: str
    posts: int
    updates: list[str]
    responses: list[str]

    @property
    def replies(self) -> list[str]:
        """The texts that answered it: the working message's updates and the response_url notes."""
        return [*self.updates, *self.responses]

    def shape_problem(self) -> str | None:
        """Why this is not exactly one answer (posted then updated once, or one note), or None."""
        if (self.posts, len(self.updates), len(self.responses)) in ((1, 1, 0), (0, 0, 1)):
            return None
        return (
            f"request {self.n} got {self.posts} chat.postMessage, {len(self.updates)} chat.update "
            f"and {len(self.responses)} response_url posts: {self.replies}"
        )


@dataclass(frozen=True)
class _Ack:
    sent_at: float
    status: int
    seconds: float
    body: str


class PacedLoad:
    """See the module doc."""

    def __init__(
        self, events_url: str, slack: SlackStandIn, *, pace: float, in_flight: int, limit: int = 500
    ) -> None:
        self.slack = slack
        self.pace = pace
        self.limit = limit  # a bound on the traffic, whatever happens to `stop()`
        self._sender = SlackSender(events_url, timeout=30)
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="paced-load")
        self._sent: list[tuple[int, Future[_Ack]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pace, name="paced-load", daemon=True)

    def start(self) -> PacedLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send nothing more and wait for every ack."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def outcomes(self, *, wait: float) -> list[Outcome]:
        """Each request's outcome, once every one has an answer (or after `wait` seconds), plus a
        moment for a duplicate answer to show."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(not o.replies for o in self._read()):
            time.sleep(0.2)
        time.sleep(1.0)  # a second answer would come right after the first
        return self._read()

    # -- plumbing ---------------------------------------------------------------------------

    def _pace(self) -> None:
        started = time.monotonic()
        for n in range(self.limit):
            delay = started + n * self.pace - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                return
            self._sent.append((n, self._pool.submit(self._send, n)))

    def _send(self, n: int) -> _Ack:
        started = time.monotonic()
        try:
            reply = self._sender.command(
                "/classify",
                text_of(n),
                team_id=load_driver.TEAM,
                channel_id=load_driver.channel(TAG, n),
                response_url=self.slack.response_url(f"{TAG}{n}"),
            )
        except OSError as error:  # no answer at all (refused, timed out): status 0
            return _Ack(started, 0, time.monotonic() - started, str(error))
        return _Ack(started, reply.status, reply.elapsed, reply.body)

    def _read(self) -> list[Outcome]:
        posts = Counter(c.params.get("channel") for c in self.slack.calls("chat.postMessage") if c.ok)
        updates: dict[str, list[str]] = {}
        for call in self.slack.calls("chat.update"):
            if call.ok:
                updates.setdefault(str(call.params.get("channel")), []).append(str(call.params.get("text")))
        found = []
        for n, future in self._sent:
            ack = future.result()
            channel = load_driver.channel(TAG, n)
            notes = self.slack.response_posts(self.slack.response_url(f"{TAG}{n}"))
            found.append(
                Outcome(
                    n=n,
                    text=text_of(n),
                    sent_at=ack.sent_at,
                    status=ack.status,
                    ack_seconds=ack.seconds,
                    ack_body=ack.body,
                    posts=posts[channel],
                    updates=updates.get(channel, []),
                    responses=[str(note.get("text")) for note in notes],
                )
            )
        return found
