"""Per-query time of a tuned set, once its model is loaded: the target is under 50 ms.

Imports 10 BANKING77 examples per intent (770, seed 0) into a fresh SQLite database, tunes them
with the local model (kept whether or not the tune beat the plain model, so the tuned path is the
one timed), then classifies 200 test queries one request at a time through `Engine.classify`, as
`/classify` does, and prints the median and 95th percentile. The first query, which loads the
tuned weights and fits the head, is timed apart.

    python benchmarks/tuned_query.py [--data ../shared/data/banking77] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_DATA, draw, load

from core.embeddings.local import LocalEmbedder
from core.embeddings.tuned import TUNED_FORMAT
from core.engine import Engine
from core.settings import Settings
from core.store import ExampleInput, Store, TunedEncoderInput
from core.tuning.encoder import EncoderPlan, tune_encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of tuning (default 60)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    texts, labels = load(args.data / "train.csv")
    test_texts, _ = load(args.data / "test.csv")
    picked = draw(labels, 10, 0)
    with tempfile.TemporaryDirectory(prefix="gembot-query-") as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'gembot.db'}")
        store.add_examples("local", "b77", [ExampleInput(str(labels[i]), texts[i]) for i in picked])
        base = LocalEmbedder()
        started = time.perf_counter()
        weights = tune_encoder(
            base,
            [texts[i] for i in picked],
            [str(labels[i]) for i in picked],
            plan=EncoderPlan(budget_seconds=args.budget),
        )
        print(f"tuned {weights.details['steps']} steps in {time.perf_counter() - started:.0f} s")
        version = store.get_set("local", "b77").version
        entry = TunedEncoderInput(
            "local", "b77", version, weights.base, "encoder", TUNED_FORMAT, len(picked), 0.0
        )
        store.save_tuned_encoder(entry, weights.to_bytes())

        engine = Engine(store=store, embedder=base, settings=Settings(escalate=False))
        started = time.perf_counter()
        engine.classify("local", "b77", [test_texts[0]])
        print(
            f"first query (loads the tuned weights, embeds the examples, fits the head): "
            f"{time.perf_counter() - started:.1f} s"
        )
        rng = np.random.default_rng(0)
        seconds = []
        for i in rng.choice(len(test_texts), size=args.queries, replace=False):
            started = time.perf_counter()
            engine.classify("local", "b77", [test_texts[int(i)]])
            seconds.append(time.perf_counter() - started)
        store.close()
    ordered = sorted(seconds)
    print(
        f"{args.queries} queries one at a time: median {1000 * statistics.median(seconds):.1f} ms, "
        f"95th percentile {1000 * ordered[int(0.95 * len(ordered)) - 1]:.1f} ms "
        "(embedding a new text with the tuned model, predicting, writing the classification log)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
