"""Load: signed `/classify` requests against `gembot serve --http` with two workers on PostgreSQL.

The Slack and Gemini stand-ins each run in their own process, as the real services run on other
machines (in this one they would take the GIL from the client). The servers embed with
GEMBOT_EMBEDDER=gemini, pointed at the Gemini stand-in, which holds every embedding request
`--latency` seconds (200 ms): each /classify text is new, so each answer waits for one.

1. `--requests` (200) requests, `--in-flight` (20) at a time: every request must be acknowledged
   200 within Slack's 3 seconds and answered exactly once (one `chat.postMessage`, the "working"
   message, and one `chat.update`, the answer, in its own channel). Prints p50 / p99 / slowest ack
   and the time from the first request to the last answer.
2. `--soak` (2,000) more in a row, in rounds of `--round` (200): the same rules, and the workers'
   resident memory (VmRSS) read after each round, which should stay flat.

    python benchmarks/load.py [--requests 200] [--in-flight 20] [--latency 0.2] [--soak 2000]

PostgreSQL comes from GEMBOT_TEST_POSTGRES_URL (an admin URL, as for the tests; default
postgres@127.0.0.1:5432): a database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import make_url, text  # noqa: E402

from core.store import Store  # noqa: E402
from core.store.db import make_engine  # noqa: E402
from tests.support import load_driver  # noqa: E402
from tests.support.gemini import GeminiStandIn  # noqa: E402
from tests.support.servers import GembotProcess, rss_kib, server_env  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

ADMIN_URL = os.environ.get(
    "GEMBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class RemoteSlack(SlackStandIn):
    """The Slack stand-in, driven through a multiprocessing proxy (which sees methods, not properties)."""

    def begin(self) -> tuple[str, str]:
        self.start()
        return self.api_url, self.bot_token

    def answers_for(self, prefix: str) -> load_driver.Answers:
        return load_driver.answers(self, prefix)


class RemoteGemini(GeminiStandIn):
    def begin(self) -> tuple[str, str]:
        self.start()
        return self.base_url, self.api_key

    def count(self, kind: str) -> int:
        return len(self.requests(kind))


class StandIns(BaseManager):
    pass


StandIns.register("RemoteSlack", RemoteSlack, exposed=("begin", "answers_for", "response_url", "stop"))
StandIns.register("RemoteGemini", RemoteGemini, exposed=("begin", "count", "latency", "stop"))


class Endpoint:
    """What `server_env` reads from a stand-in, for one living in another process."""

    def __init__(self, **values: str) -> None:
        self.__dict__.update(values)


def create_database() -> tuple[Any, str]:
    admin = make_engine(ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"gembot_load_{os.getpid()}_{int(time.time())}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin, admin.url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin: Any, url: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def report(title: str, result: load_driver.LoadResult) -> bool:
    last = result.to_last_answer
    print(f"{title}: {len(result.statuses)} requests")
    print(
        f"  ack latency: p50 {result.p50 * 1000:.0f} ms, p99 {result.p99 * 1000:.0f} ms, "
        f"slowest {max(result.ack_seconds) * 1000:.0f} ms; all 200: {set(result.statuses) == {200}}"
    )
    answered = sum(1 for c in result.channels if result.answers.updates.get(c) == 1)
    print(
        f"  answered exactly once: {answered}/{len(result.channels)}; time to last answer: "
        + (f"{last:.2f} s" if last is not None else "none arrived")
    )
    problems = result.problems()
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return not problems


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


Run = Callable[[str, int, int], load_driver.LoadResult]


def soak(run: Run, args: argparse.Namespace, workers: list[int], memory: dict[int, list[int]]) -> bool:
    """Part 2: `args.soak` requests in rounds, the workers' RSS read after each; True if all held."""
    print(f"\n2. {args.soak} more requests in a row, {args.in_flight} in flight, rounds of {args.round}")
    done = 0
    acks: list[float] = []
    ok = True
    started = time.monotonic()
    while done < args.soak:
        count = min(args.round, args.soak - done)
        result = run(f"SOAK{done // args.round:02d}X", count, args.requests + done)
        acks.extend(result.ack_seconds)
        for problem in result.problems():
            ok = False
            print(f"  PROBLEM (round {done // args.round + 1}): {problem}")
        done += count
        for pid in workers:
            memory[pid].append(rss_kib(pid))
    elapsed = time.monotonic() - started
    ordered = sorted(acks)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    print(
        f"  {done} requests in {elapsed:.1f} s ({done / elapsed:.0f}/s); ack p50 "
        f"{statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"slowest {ordered[-1] * 1000:.0f} ms; every one acked 200 < 3 s and answered once: {ok}"
    )
    print("  worker RSS (MiB): at start, after part 1, then after each round of the soak")
    for pid in workers:
        readings = memory[pid]
        during = readings[1:]
        growth = during[-1] - during[0]
        print(f"    worker {pid}: " + " ".join(mib(r) for r in readings))
        print(
            f"      over the soak: {mib(during[0])} -> {mib(during[-1])} MiB ({growth / 1024:+.1f} MiB), "
            f"max {mib(max(during))}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2, help="Gemini stand-in latency, seconds")
    parser.add_argument("--soak", type=int, default=2000, help="requests in a row for the memory check")
    parser.add_argument("--round", type=int, default=200, help="soak requests between memory readings")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    args = parser.parse_args()

    admin, database_url = create_database()
    ok = True
    with StandIns() as manager, tempfile.TemporaryDirectory() as logs:
        slack: Any = manager.RemoteSlack()  # type: ignore[attr-defined]
        gemini: Any = manager.RemoteGemini()  # type: ignore[attr-defined]
        api_url, bot_token = slack.begin()
        base_url, api_key = gemini.begin()
        gemini.latency(args.latency, on="embed")
        server = None
        try:
            Store.open(database_url, migrate=True).close()
            load_driver.seed(database_url)
            env = server_env(
                Endpoint(api_url=api_url, bot_token=bot_token),
                Endpoint(base_url=base_url, api_key=api_key),
                database_url,
                extra={"GEMBOT_EMBEDDER": "gemini"},
            )
            server = GembotProcess(env, log_dir=Path(logs), workers=args.workers, threads=args.threads)
            server.start().wait_healthy()
            workers = server.worker_pids()
            print(
                f"gembot serve --http: {args.workers} workers x {args.threads} threads, PostgreSQL, "
                f"GEMBOT_EMBEDDER=gemini on the stand-in at {args.latency * 1000:.0f} ms a request; "
                f"{os.cpu_count()} CPUs"
            )
            memory = {pid: [rss_kib(pid)] for pid in workers}

            def run(tag: str, count: int, start: int) -> load_driver.LoadResult:
                return load_driver.run(
                    server.events_url,  # type: ignore[union-attr]
                    slack=slack,
                    count=count,
                    in_flight=args.in_flight,
                    tag=tag,
                    start=start,
                    response_url=slack.response_url(),
                    wait=120,
                    counts=slack.answers_for,
                )

            embeds_before = gemini.count("embed")
            first = run("LOAD", args.requests, 0)
            ok &= report(f"\n1. {args.in_flight} in flight", first)
            print(f"  Gemini embedding requests: {gemini.count('embed') - embeds_before}")
            for pid in workers:
                memory[pid].append(rss_kib(pid))
            if args.soak > 0:
                ok &= soak(run, args, workers, memory)
            if sorted(server.worker_pids()) != sorted(workers):
                print("  PROBLEM: a worker was replaced during the run")
                ok = False
        finally:
            if server is not None:
                code = server.stop()
                if code != 0:
                    print(f"the server exited with {code}:\n{server.log()[-3000:]}")
                    ok = False
                if "Traceback" in server.log():
                    print("PROBLEM: the server logged a traceback:\n" + server.log()[-3000:])
                    ok = False
            slack.stop()
            gemini.stop()
            drop_database(admin, database_url)
    print("\nall rules held" if ok else "\nSOME RULES WERE BROKEN")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
