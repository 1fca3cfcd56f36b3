"""Streaming answers: how soon a mention's answer shows in Slack, and what it costs in Slack calls.

`gembot serve --http` (one worker) runs against the Slack and Gemini stand-ins; the Gemini
stand-in streams every answer as `--chunks` server-sent events `--pace` seconds apart (a model
writing at a steady rate; its first event leaves as soon as the request arrives). Each round sends
a signed `app_mention` with a question and waits for the streamed answer to be stopped. Reported,
as medians over `--rounds` rounds:

- ack: the HTTP answer to the event (Slack's 3-second deadline);
- mention → first text: from sending the event to the `chat.startStream` that carries the first
  text (the moment Slack shows it);
- Gemini's first chunk → first text: from the request reaching Gemini (its first chunk leaves then)
  to that `chat.startStream` (target: at most 300 ms);
- Slack calls per answer: every Web API call of the round (the "working" message, its removal,
  the stream's start, appends and stop).

    python benchmarks/streaming.py [--rounds 10] [--chunks 40] [--pace 0.05] [--answer-words 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.gemini import GeminiStandIn  # noqa: E402
from tests.support.servers import GembotProcess, server_env  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

CHANNEL = "C0BENCH"
BOT = "U0GEMBOT"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--pace", type=float, default=0.05)
    parser.add_argument("--answer-words", type=int, default=300)
    options = parser.parse_args()
    answer = " ".join(f"word{i}" for i in range(options.answer_words))

    acks: list[float] = []
    to_first: list[float] = []
    gemini_to_first: list[float] = []
    per_answer: list[int] = []
    methods: Counter[str] = Counter()
    with (
        SlackStandIn() as slack,
        GeminiStandIn() as gemini,
        tempfile.TemporaryDirectory(prefix="gembot-stream-") as scratch,
    ):
        gemini.stream_pace(options.chunks, options.pace)
        gemini.answer_with(lambda _prompt: answer)
        env = server_env(slack, gemini, f"sqlite:///{Path(scratch) / 'gembot.db'}")
        with GembotProcess(env, log_dir=Path(scratch), workers=1) as server:
            server.wait_healthy()
            for round_number in range(options.rounds + 1):  # round 0 warms up (imports, connections)
                slack.clear_calls()
                gemini.clear_requests()
                ts = f"{int(time.time())}.{round_number:06d}"
                event = {
                    "type": "app_mention",
                    "user": "U0HUMAN",
                    "text": f"<@{BOT}> tell me a long story",
                    "ts": ts,
                    "channel": CHANNEL,
                    "event_ts": ts,
                }
                sent = time.monotonic()
                reply = server.sender.event(event)
                if reply.status != 200:
                    raise SystemExit(f"the event was answered {reply.status}: {reply.text[:200]}")
                slack.wait_for("chat.stopStream", timeout=60)
                time.sleep(0.2)  # let the last calls land before counting them
                if round_number == 0:
                    continue
                (start,) = slack.calls("chat.startStream")
                (request,) = gemini.requests("generate")
                acks.append(reply.elapsed)
                to_first.append(start.time - sent)
                gemini_to_first.append(start.time - request.timestamp)
                calls = slack.calls()
                per_answer.append(len(calls))
                methods.update(c.method for c in calls)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms (max {max(values) * 1000:.0f} ms)"

    print(
        f"{options.rounds} mentions; Gemini streams {options.answer_words} words in "
        f"{options.chunks} chunks, {options.pace * 1000:.0f} ms apart"
    )
    print(f"  ack:                                {ms(acks)}")
    print(f"  mention -> first text in Slack:     {ms(to_first)}")
    print(f"  Gemini's first chunk -> first text: {ms(gemini_to_first)}  (target <= 300 ms)")
    print(f"  Slack calls per answer:             {statistics.median(per_answer):g}")
    for method, count in sorted(methods.items()):
        print(f"    {method}: {count / options.rounds:g}")
    return 0 if statistics.median(gemini_to_first) <= 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
