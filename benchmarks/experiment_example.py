"""The README's worked example, reproduced: two models compared on the shipped tones.csv.

No machine here reaches Google, so the models are the loopback Gemini stand-in, scripted to answer
like two models of different strength (the lighter one misreads two messages: a crashed laptop
and a broken coffee machine). Everything else is real: the `gembot` command line, the
google-genai SDK on the wire, the store, the scoring, the table and the plot. Run against Google,
the same commands print the same table with the models' own answers.

    python benchmarks/experiment_example.py [--plot docs/experiment-comparison.png]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.cli.main import main as gembot  # noqa: E402
from tests.support.gemini import GeminiStandIn, Prompt  # noqa: E402

POSITIVE = ("thank", "love", "great", "huge", "appreciate", "fantastic", "nice", "delight")
NEGATIVE = ("fail", "frustrat", "third", "broken", "unbearable", "cancel", "crash", "still no")
MISREAD_BY_LITE = ("crash", "coffee")


def tone(prompt: Prompt) -> str:
    text = prompt.last_user_text.lower()
    if any(word in text for word in POSITIVE):
        return "Positive"
    if prompt.model.endswith("-lite") and any(word in text for word in MISREAD_BY_LITE):
        return "Neutral"
    if any(word in text for word in NEGATIVE):
        return "Negative"
    return "Neutral"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plot", default="docs/experiment-comparison.png")
    a = parser.parse_args()
    with GeminiStandIn() as standin, tempfile.TemporaryDirectory() as directory:
        standin.answer_with(tone)
        standin.latency(0.4, on="generate")  # a short answer from a light model takes about this
        os.environ.update(
            GEMINI_API_KEY=standin.api_key,
            GEMINI_BASE_URL=standin.base_url,
            DATABASE_URL=f"sqlite:///{Path(directory) / 'gembot.db'}",
        )
        os.chdir(REPO)
        prompt = "Classify the tone of this message as positive, negative or neutral, in one word: {text}"
        run = [
            "experiment", "run",
            "--prompt", prompt,
            "--input", "core/examples/tones.csv", "--model", "gemini-2.5-flash-lite,gemini-2.5-flash",
            "--temperature", "0", "--seed", "7", "--expected", "expected",
        ]  # fmt: skip
        for argv in ([*run, "--dry-run"], run, ["experiment", "compare", "1", "--plot", a.plot]):
            print(f"$ gembot {shlex.join(argv)}", flush=True)
            code = gembot(argv)
            if code:
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
