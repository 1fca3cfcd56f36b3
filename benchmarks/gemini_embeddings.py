"""Embedding throughput and quota pacing of the Gemini embedder, against the loopback stand-in.

The stand-in runs in its own process, as the real API runs on Google's machines: in ours it would
take the GIL from the client for the ~0.5 ms a text it spends making vectors. Every request is
held 200 ms (`--latency`) before it is answered.

1. 10,000 distinct texts through CachedEmbedder + GeminiEmbedder on a fresh SQLite store: the
   requests sent (at most 100 a request), the wall time against the bound
   requests ÷ requests in flight × latency, the same one request at a time, and a second run on
   the same store (which must send nothing).
2. A quota of N requests per window enforced by the stand-in (scaled down from a minute so it
   runs in half a minute): a long job paced by the client-side limiter, with the 429s it got and
   its time against the least the quota allows; then the same job without the limiter.

    python benchmarks/gemini_embeddings.py [--texts 10000] [--latency 0.2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.embeddings.base import Parts, TaskType  # noqa: E402
from core.embeddings.cache import CachedEmbedder  # noqa: E402
from core.gemini.client import GeminiClient  # noqa: E402
from core.gemini.embedder import MAX_BATCH, GeminiEmbedder  # noqa: E402
from core.gemini.ratelimit import RateLimiter  # noqa: E402
from core.settings import Secret, Settings  # noqa: E402
from core.store import Store  # noqa: E402
from tests.support.gemini.remote import StandInManager  # noqa: E402

WORDS = (
    "printer",
    "jammed",
    "deploy",
    "build",
    "server",
    "password",
    "reset",
    "lunch",
    "menu",
    "invoice",
    "refund",
    "laptop",
    "screen",
    "meeting",
    "notes",
    "slides",
    "budget",
    "review",
    "onboarding",
    "channel",
    "vpn",
    "access",
    "dashboard",
)


def distinct_texts(n: int, *, tag: str = "") -> list[str]:
    return [
        f"{tag}ticket {i}: the {WORDS[i % len(WORDS)]} and the {WORDS[(i * 7 + 3) % len(WORDS)]} "
        f"on floor {i % 13} need attention before {WORDS[(i * 11 + 5) % len(WORDS)]} number {i}"
        for i in range(n)
    ]


@dataclass
class Timed:
    seconds: float  # the whole CachedEmbedder.embed call
    embedding: float  # from the first request out to the last answer in (cache writes overlap it)
    cpu: float  # this process's CPU seconds: the client's, since the stand-in runs elsewhere
    requests: int
    statuses: list[int]


class TimedEmbedder(GeminiEmbedder):
    """GeminiEmbedder, noting when its first request went out and its last answer came back."""

    seconds = 0.0

    def embed_parts(self, texts: Sequence[str], *, task_type: TaskType) -> Parts:
        started = time.monotonic()
        for part in super().embed_parts(texts, task_type=task_type):
            self.seconds = time.monotonic() - started
            yield part


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def embed_run(
    standin: Any,
    settings: Settings,
    texts: list[str],
    *,
    store: Store,
    concurrency: int,
    limiter: RateLimiter | None,
) -> Timed:
    standin.clear_requests()
    client = GeminiClient.from_settings(settings)
    embedder = TimedEmbedder(client, concurrency=concurrency, limiter=limiter)
    cached = CachedEmbedder(embedder, store)
    started, cpu = time.monotonic(), cpu_seconds()
    vectors = cached.embed(texts, task_type=TaskType.CLASSIFICATION)
    seconds, cpu = time.monotonic() - started, cpu_seconds() - cpu
    assert vectors.shape == (len(texts), embedder.dimensions)
    statuses = standin.statuses("embed")
    return Timed(seconds, embedder.seconds, cpu, len(statuses), statuses)


def fresh_store(directory: Path, name: str) -> Store:
    return Store.open(f"sqlite:///{directory / name}.db")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the stand-in holds each request")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="requests in flight (GEMBOT_EMBED_CONCURRENCY)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the concurrent run (median)")
    parser.add_argument("--quota", type=int, default=10, help="requests the stand-in allows per window")
    parser.add_argument("--window", type=float, default=6.0, help="the quota's window in seconds")
    parser.add_argument("--quota-texts", type=int, default=6_000, help="texts in the quota job")
    parser.add_argument("--skip-unpaced", action="store_true", help="skip the quota job without the limiter")
    args = parser.parse_args()

    with StandInManager() as manager, tempfile.TemporaryDirectory() as tmp:
        standin: Any = manager.RemoteStandIn()  # type: ignore[attr-defined]
        base_url, api_key = standin.begin()
        settings = Settings(gemini_api_key=Secret(api_key), gemini_base_url=base_url)
        directory = Path(tmp)
        standin.latency(args.latency, on="embed")
        texts = distinct_texts(args.texts)
        print(
            f"Gemini embeddings against the stand-in (own process), {args.latency * 1000:.0f} ms a request, "
            f"{len(texts):,} distinct texts, at most {MAX_BATCH} a request\n"
        )

        # 1. Throughput.
        runs: list[Timed] = []
        seconds_again: list[float] = []
        requests_again: list[int] = []
        for i in range(args.repeat):
            store = fresh_store(directory, f"concurrent{i}")
            runs.append(
                embed_run(standin, settings, texts, store=store, concurrency=args.concurrency, limiter=None)
            )
            again = embed_run(
                standin, settings, texts, store=store, concurrency=args.concurrency, limiter=None
            )
            seconds_again.append(again.seconds)
            requests_again.append(again.requests)
            store.close()
        wall = statistics.median(r.seconds for r in runs)
        embedding = statistics.median(r.embedding for r in runs)
        requests = runs[0].requests
        bound = requests / args.concurrency * args.latency
        print(f"concurrency {args.concurrency} ({os.cpu_count()} CPUs, shared with the stand-in's process):")
        print(f"  requests sent            {requests} (every run: {sorted({r.requests for r in runs})})")
        print(
            f"  wall time                {wall:.2f} s (median of {len(runs)}: "
            + ", ".join(f"{r.seconds:.2f}" for r in runs)
            + ")"
        )
        print(
            f"  bound                    {requests} / {args.concurrency} × {args.latency:g} s = {bound:.2f} s"
        )
        print(f"  ratio to the bound       {wall / bound:.2f}  (target ≤ 1.5)")
        print(
            f"  of which the requests    {embedding:.2f} s, ratio {embedding / bound:.2f} "
            f"(the rest: hashing, cache lookup, the last write of {len(texts):,} vectors to SQLite)"
        )
        cpu = statistics.median(r.cpu for r in runs)
        print(
            f"  client CPU               {cpu:.2f} s ({cpu / requests * 1000:.0f} ms a request: JSON and the "
            "SDK's models, under one GIL)"
        )
        again_seconds = statistics.median(seconds_again)
        print(f"  second run               {max(requests_again)} requests, {again_seconds:.2f} s (median)")

        store = fresh_store(directory, "serial")
        serial = embed_run(standin, settings, texts, store=store, concurrency=1, limiter=None)
        store.close()
        serial_bound = serial.requests * args.latency
        print("concurrency 1 (one request at a time):")
        print(f"  requests sent            {serial.requests}")
        print(f"  wall time                {serial.seconds:.2f} s (requests {serial.embedding:.2f} s)")
        print(f"  bound                    {serial.requests} × {args.latency:g} s = {serial_bound:.2f} s")
        serial_ratio, requests_ratio = serial.seconds / serial_bound, serial.embedding / serial_bound
        print(f"  ratio to its bound       {serial_ratio:.2f} (requests {requests_ratio:.2f})")
        print(f"  concurrency {args.concurrency} is          {serial.seconds / wall:.2f}× faster")

        # 2. Pacing under a quota.
        job = distinct_texts(args.quota_texts, tag="quota ")
        n_requests = math.ceil(len(job) / MAX_BATCH)
        # The least the quota allows: a window's worth at once, the next window's worth one window
        # later, and so on; then the last window's requests take their own time, so many at a time.
        windows = math.ceil(n_requests / args.quota) - 1
        last = n_requests - windows * args.quota
        allowed = windows * args.window + math.ceil(last / args.concurrency) * args.latency
        per_minute = args.quota * 60 / args.window
        print(
            f"\nquota: {args.quota} requests per {args.window:g} s window (≈ {per_minute:.0f} a minute), "
            f"job of {len(job):,} texts = {n_requests} requests"
        )
        standin.quota(args.quota, window=args.window, on="embed")
        store = fresh_store(directory, "paced")
        limiter = RateLimiter(args.quota, per=args.window)
        paced = embed_run(standin, settings, job, store=store, concurrency=args.concurrency, limiter=limiter)
        store.close()
        arrivals = standin.arrivals("embed")
        print("  paced by the client limiter:")
        print(f"    429s                   {paced.statuses.count(429)}")
        span = arrivals[-1] - arrivals[0]
        print(f"    wall time              {paced.seconds:.2f} s (first to last request: {span:.2f} s)")
        print(
            f"    the quota allows       {allowed:.2f} s ({windows} windows, then the last {last} requests; "
            f"{n_requests / args.quota * args.window:.2f} s at the average rate)"
        )
        print(f"    ratio                  {paced.seconds / allowed:.3f}  (target ≤ 1.10)")

        if not args.skip_unpaced:
            standin.quota(args.quota, window=args.window, on="embed")  # a fresh window
            store = fresh_store(directory, "unpaced")
            bouncing = Settings(
                gemini_api_key=Secret(api_key),
                gemini_base_url=base_url,
                gemini_retries=50,
                gemini_max_retry_wait=60,
            )
            unpaced = embed_run(
                standin, bouncing, job, store=store, concurrency=args.concurrency, limiter=None
            )
            store.close()
            print("  without the limiter (429s retried after their RetryInfo delay):")
            print(f"    429s                   {unpaced.statuses.count(429)}")
            print(
                f"    wall time              {unpaced.seconds:.2f} s, ratio {unpaced.seconds / allowed:.3f}"
            )
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
