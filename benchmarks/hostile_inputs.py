"""What hostile inputs cost the bot on this machine: oversized and stalled requests, image and Markdown bombs.

Every figure is the median of `--runs` (5) runs, each bounded in time; all traffic stays on 127.0.0.1,
between this process, the loopback Slack and Gemini stand-ins and `gembot serve --http` (gunicorn).

1. Unsigned oversized bodies: a fresh server for each run, 1 worker with the default 8 threads,
   warmed by one signed and one small unsigned request; then 3 unsigned 60 MiB POSTs to
   /slack/events with a Content-Length and 1 chunked, all at once (as tests/bot/test_request_bounds.py
   sends them). Prints the worker's peak resident memory (VmRSS, sampled every 2 ms) above its level
   before, the statuses read back (a client may be reset before it reads the 413), the refusals in
   the server's log, the time until all four calls are answered or cut off, and the time to answer a
   signed `url_verification` right after (and right before).
2. A slow client: a server with GEMBOT_READ_TIMEOUT=1 and 1 thread; a POST that stops sending its
   body. Prints the time until the server closes that connection (after a 408), and the latency of a
   /healthz sent meanwhile, which waits for the only thread.
3. Image bombs: `core.gemini.images.prepare_image` on the GIF bombs of tests/support/image_bombs.py
   (12,000 × 12,000 and 8,000 × 8,000, every pixel in their LZW data), each in a fresh interpreter so
   that its peak RSS (VmHWM) is the bomb's alone, as tests/core/gemini/test_images.py measures it: the
   time to refuse and the memory it took.
4. Markdown bombs: `handlers.text.plan_message` on 40,000 characters of each of `__a `, `~~a `,
   `**a `, `*a `, `[a](`, `` `a `` (inputs that took seconds with quadratic regexes): ms per input.

    python benchmarks/hostile_inputs.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from handlers.text import plan_message  # noqa: E402
from tests.bot.test_request_bounds import HUGE, PeakRss, closed_after, post_raw, stalled  # noqa: E402
from tests.support.gemini import GeminiStandIn  # noqa: E402
from tests.support.image_bombs import measure_bomb  # noqa: E402
from tests.support.servers import GembotProcess, rss_kib, server_env  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

REFUSED = "bot.slack_http: refused a request of "
STALLED_BODY = (
    b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 1000\r\n\r\n{"type": "event_'
)
BOMB_SIDES = (12_000, 8_000)
MARKDOWN_UNITS = ("__a ", "~~a ", "**a ", "*a ", "[a](", "`a ")
MARKDOWN_CHARS = 40_000
MAX_RUNS = 50


def median_of(values: Iterable[float], fmt: str, unit: str = "") -> str:
    """`median unit (runs: a, b, c)`, each number formatted by `fmt`."""
    values = list(values)
    runs = ", ".join(f"{v:{fmt}}" for v in values)
    return f"{statistics.median(values):{fmt}}{unit} (runs: {runs})"


def huge_post(port: int, chunked: bool) -> int | None:
    return post_raw(port, size=HUGE, chunked=chunked)


def signed_ms(server: GembotProcess) -> float:
    """The time to answer a signed `url_verification`, in ms; it must be answered 200."""
    body = json.dumps({"type": "url_verification", "challenge": "still-here", "token": "x"})
    reply = server.sender.post(body, content_type="application/json")
    assert (reply.status, reply.json()) == (200, {"challenge": "still-here"}), reply
    return reply.elapsed * 1000


def checked_stop(server: GembotProcess, problems: list[str]) -> None:
    code = server.stop()
    if code != 0:
        problems.append(f"the server exited with {code}")
    if "Traceback" in server.log():
        problems.append("the server logged a traceback:\n" + server.log()[-3000:])


def oversized(env: dict[str, str], logs: Path, runs: int, problems: list[str]) -> None:
    """Part 1: four unsigned 60 MiB bodies at once, on a fresh one-worker server each run."""
    growth, answered, before_ms, after_ms, logged = [], [], [], [], []
    statuses: Counter[int | None] = Counter()
    threads = 8  # `gembot serve`'s default
    for _ in range(runs):
        server = GembotProcess(env, log_dir=logs, workers=1, threads=threads)
        with server:
            (worker,) = server.worker_pids()
            # Whatever a first request loads is loaded before the measure.
            before_ms.append(signed_ms(server))
            if post_raw(server.port, size=10_000, chunked=False) != 401:
                problems.append("a small unsigned POST was not answered 401")
            before = rss_kib(worker)
            started = time.monotonic()
            with PeakRss(worker) as rss, ThreadPoolExecutor(4) as pool:
                seen = list(pool.map(partial(huge_post, server.port), [False] * 3 + [True]))
            answered.append(time.monotonic() - started)
            after_ms.append(signed_ms(server))
            growth.append((rss.peak - before) / 1024)
            statuses.update(seen)
            logged.append(server.log().count(REFUSED))
            if server.worker_pids() != [worker]:
                problems.append("the worker was replaced during part 1")
        checked_stop(server, problems)
    print(
        f"\n1. unsigned {HUGE >> 20} MiB POSTs to /slack/events, 3 with Content-Length and 1 chunked at "
        f"once, gembot serve --http with 1 worker × {threads} threads (a fresh one each run)"
    )
    print(f"  worker peak RSS growth:           {median_of(growth, '.1f', ' MiB')}")
    shown = ", ".join(f"{status or 'none read'} × {n}" for status, n in statuses.most_common())
    print(f"  statuses seen over {runs * 4} requests:   {shown}")
    print(f"  refusals in the server log:       {', '.join(map(str, logged))} (of 4 a run)")
    print(f"  time until all four answered:     {median_of((s * 1000 for s in answered), '.0f', ' ms')}")
    print(
        f"  signed request right after:       {median_of(after_ms, '.1f', ' ms')} "
        f"(right before: {statistics.median(before_ms):.1f} ms)"
    )


def slow_client(env: dict[str, str], logs: Path, runs: int, problems: list[str]) -> None:
    """Part 2: a body that stops coming, on a server whose only thread it holds for a second."""
    closed, health, answered_408 = [], [], 0
    env = {**env, "GEMBOT_READ_TIMEOUT": "1"}
    server = GembotProcess(env, log_dir=logs, workers=1, threads=1)

    def healthz(sent: float) -> tuple[int, float]:
        status, _ = server.get("/healthz", timeout=10)
        return status, time.monotonic() - sent

    with server, ThreadPoolExecutor(1) as pool:
        for _ in range(runs):
            sock = stalled(server.port, STALLED_BODY)
            started = time.monotonic()
            reply = pool.submit(healthz, started)
            _, answer = closed_after(sock)
            closed.append(time.monotonic() - started)
            status, seconds = reply.result(timeout=15)
            if status != 200:
                problems.append(f"/healthz answered {status} while a client stalled")
            health.append(seconds)
            answered_408 += answer.startswith(b"HTTP/1.1 408")
        if server.get("/healthz")[0] != 200:
            problems.append("/healthz did not answer after the stalls")
    checked_stop(server, problems)
    print("\n2. a client that stops sending its body, GEMBOT_READ_TIMEOUT=1, 1 worker × 1 thread")
    print(f"  stalled body to connection closed: {median_of(closed, '.3f', ' s')}")
    print(f"  answered 408 before the close:     {answered_408} of {runs}")
    print(f"  /healthz sent meanwhile, answered: {median_of(health, '.3f', ' s')}")


def image_bombs(runs: int, problems: list[str]) -> None:
    """Part 3: `prepare_image` on the GIF bombs, each run in a fresh interpreter."""
    print("\n3. GIF bombs through core.gemini.images.prepare_image (a fresh interpreter each run)")
    for side in BOMB_SIDES:
        measured = []
        for _ in range(runs):
            measured.append(measure_bomb(side, side))
        outcomes = {m["outcome"] for m in measured}
        if any(not o.startswith("bomb.gif is an image of") for o in outcomes):
            problems.append(f"the {side:,} × {side:,} bomb was not refused: {outcomes}")
        print(f"  {side:,} × {side:,} ({measured[0]['bytes']:,} bytes): {' / '.join(sorted(outcomes))}")
        print(
            f"    time to refuse:        {median_of((m['seconds'] * 1000 for m in measured), '.2f', ' ms')}"
        )
        print(
            f"    peak RSS growth:       {median_of((m['grew_kb'] / 1024 for m in measured), '.1f', ' MiB')}"
        )


def markdown_bombs(runs: int) -> None:
    """Part 4: `plan_message` on 40,000 characters of each pathological unit."""
    print(f"\n4. handlers.text.plan_message on {MARKDOWN_CHARS:,} characters of one unit repeated")
    plan_message("warm **up** and [a](https://example.com)")
    for unit in MARKDOWN_UNITS:
        bomb = (unit * (MARKDOWN_CHARS // len(unit)))[:MARKDOWN_CHARS]
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            plan_message(bomb)
            times.append((time.perf_counter() - started) * 1000)
        print(f"  {unit!r:8} {median_of(times, '.1f', ' ms')}")


def timed(label: str, part: Callable[[], None]) -> None:
    started = time.monotonic()
    part()
    print(f"  ({label} took {time.monotonic() - started:.1f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help=f"runs of each measure (median; 1 to {MAX_RUNS})")
    args = parser.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be between 1 and {MAX_RUNS}")

    problems: list[str] = []
    print(f"hostile inputs on this machine ({os.cpu_count()} CPUs), medians of {args.runs} runs")
    with SlackStandIn() as slack, GeminiStandIn() as gemini, tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        env = server_env(slack, gemini, f"sqlite:///{logs / 'gembot.db'}")
        timed("part 1", lambda: oversized(env, logs, args.runs, problems))
        timed("part 2", lambda: slow_client(env, logs, args.runs, problems))
    timed("part 3", lambda: image_bombs(args.runs, problems))
    timed("part 4", lambda: markdown_bombs(args.runs))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
