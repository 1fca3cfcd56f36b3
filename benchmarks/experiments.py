"""A prompt experiment at scale against the loopback Gemini stand-in: pacing, 429s and the cache.

The stand-in runs in its own process, as the real API runs on Google's machines, holds every
answer `--latency` seconds, and enforces a quota of `--quota` requests per `--window` seconds
per model (a per-minute quota scaled down so the run takes half a minute). The client paces each
model with its own limiter at the same rate, as `GEMBOT_GENERATE_RPM` does with a 60 s window.

1. `--rows` rows × 2 models, online, on a fresh SQLite store: wall time against the least the
   quota allows, (ceil(rows / quota) − 1) × window + latency (every model's last window still
   needs one answer), the 429s the stand-in sent, and the client's CPU time.
2. The same experiment again (a rerun of the locked configuration): requests sent (must be 0,
   every answer comes from the response cache) and its wall time.

    python benchmarks/experiments.py [--rows 1000] [--quota 100] [--window 2] [--latency 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.experiments.cases import Cases  # noqa: E402
from core.experiments.pacing import ModelLimiters  # noqa: E402
from core.experiments.runner import KIND_CLI, ExperimentRunner  # noqa: E402
from core.experiments.spec import ExperimentSpec, Generation, Scoring  # noqa: E402
from core.gemini.client import GeminiClient  # noqa: E402
from core.settings import Secret, Settings  # noqa: E402
from core.store import Store  # noqa: E402
from tests.support.gemini.remote import StandInManager  # noqa: E402

MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cases(rows: int) -> Cases:
    return Cases(
        columns=("text", "expected"),
        rows=tuple(
            {"text": f"ticket {i}: the build on floor {i % 13} is red", "expected": f"ticket {i}"}
            for i in range(rows)
        ),
    )


def run_once(runner: ExperimentRunner, spec: ExperimentSpec, table: Cases) -> float:
    _, job = runner.create("bench", spec, table, name="bench", source="bench.csv", kind=KIND_CLI)
    started = time.monotonic()
    runner.run(job)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--quota", type=int, default=100, help="requests per window per model")
    parser.add_argument("--window", type=float, default=2.0, help="seconds (a minute, scaled down)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the stand-in holds each answer")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()

    manager = StandInManager()
    manager.start()
    standin = manager.RemoteStandIn()  # type: ignore[attr-defined]
    base_url, key = standin.begin()
    standin.latency(a.latency, on="generate")
    standin.quota(a.quota, window=a.window, on="generate")
    settings = Settings(
        gemini_api_key=Secret(key),
        gemini_base_url=base_url,
        experiment_concurrency=a.concurrency,
        generate_rpm=a.quota,
        gemini_retry_delay=0.05,
    )
    spec = ExperimentSpec(
        template="Summarise: {text}",
        models=MODELS,
        generation=Generation(temperature=0.0),
        scoring=Scoring.parse("contains", expected="expected", judge_model=None),
    )
    table = cases(a.rows)
    bound = (math.ceil(a.rows / a.quota) - 1) * a.window + a.latency
    walls, ratios, throttled, cpus, again, again_sent = [], [], [], [], [], []
    try:
        for _ in range(a.repeat):
            with tempfile.TemporaryDirectory() as directory:
                store = Store.open(f"sqlite:///{Path(directory) / 'bench.db'}")
                gemini = GeminiClient(settings)
                # A fresh limiter per repeat: the stand-in's window is fresh too.
                runner = ExperimentRunner(
                    store, settings, gemini, limiters=ModelLimiters(a.quota, window=a.window)
                )
                standin.quota(a.quota, window=a.window, on="generate")
                standin.clear_requests()
                cpu = cpu_seconds()
                wall = run_once(runner, spec, table)
                cpus.append(cpu_seconds() - cpu)
                statuses = standin.statuses("generate")
                walls.append(wall)
                ratios.append(wall / bound)
                throttled.append(statuses.count(429))
                standin.clear_requests()
                again.append(run_once(runner, spec, table))
                again_sent.append(len(standin.statuses("generate")))
                store.close()
    finally:
        standin.stop()
        manager.shutdown()

    requests = a.rows * len(MODELS)
    print(
        f"experiment: {a.rows:,} rows × {len(MODELS)} models = {requests:,} requests; stand-in latency "
        f"{a.latency * 1000:.0f} ms, quota {a.quota} requests / {a.window:g} s per model; "
        f"{a.concurrency} in flight; medians of {a.repeat}"
    )
    print(f"  quota-bound minimum: {bound:.2f} s")
    print(
        f"  wall time: {statistics.median(walls):.2f} s  ({statistics.median(ratios):.3f}× the minimum; "
        f"runs: {', '.join(f'{w:.2f}' for w in walls)})"
    )
    print(f"  429s from the stand-in: {statistics.median(throttled):.0f} (runs: {throttled})")
    print(
        f"  client CPU: {statistics.median(cpus):.2f} s "
        f"({statistics.median(cpus) / requests * 1000:.2f} ms a request)"
    )
    print(
        f"  second run of the same configuration: {statistics.median(again_sent):.0f} requests sent, "
        f"{statistics.median(again):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
