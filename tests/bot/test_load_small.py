"""The load benchmark (`benchmarks/load.py`) at a size CI can afford: 30 signed `/classify` requests,
10 in flight, against `gembot serve --http` with two gunicorn workers on PostgreSQL, embedding
through the Gemini stand-in at 200 ms a request. Every request is acknowledged 200 within Slack's
3 seconds and answered exactly once; timings beyond that rule are the benchmark's business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import load_driver
from tests.support.gemini import GeminiStandIn
from tests.support.servers import GembotProcess, server_env
from tests.support.slack_standin import SlackStandIn


@pytest.mark.parametrize("backend", ["postgres"])
def test_thirty_classifications_ten_in_flight_on_two_workers(
    slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, database_url: str, tmp_path: Path
) -> None:
    load_driver.seed(database_url)
    gemini_standin.latency(0.2, on="embed")
    env = server_env(slack_standin, gemini_standin, database_url, extra={"GEMBOT_EMBEDDER": "gemini"})
    with GembotProcess(env, log_dir=tmp_path, workers=2, threads=8) as server:
        result = load_driver.run(
            server.events_url,
            slack=slack_standin,
            count=30,
            in_flight=10,
            tag="SMALL",
            response_url=slack_standin.response_url(),
            wait=30,
        )
        assert result.problems() == [], server.log()[-3000:]
        assert len(server.worker_pids()) == 2
        assert server.get("/healthz")[0] == 200
    assert "Traceback" not in server.log(), server.log()[-3000:]
