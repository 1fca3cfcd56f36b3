"""Prompt experiments sent by DM: a CSV with `run: <template>` runs on Gemini, in its thread.

Through the app (signed requests dispatched in process) against the Slack and Gemini stand-ins:
the file is downloaded from the Slack stand-in, every request goes through the real google-genai
SDK, and the results come back as uploads in the DM message's thread.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from core.bulk_runner import MAX_ATTEMPTS
from core.errors import InvalidInput
from core.experiments.cases import Cases
from core.experiments.runner import KIND_CLI, KIND_SLACK
from core.experiments.spec import ExperimentSpec, Scoring
from core.store import Store
from handlers import experiment_runs
from handlers.bulk import PROGRESS_TS, REPLY_TO
from handlers.replies import ReplyTo
from tests.support.gemini import Prompt
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackCall

DM = "D0HUMAN"
USER = "U0HUMAN"
MODELS = "gemini-2.5-flash-lite, gemini-2.5-flash"
CASES = (
    "text,expected\n"
    "I love this,positive\n"
    "This is awful,negative\n"
    "The meeting is at 3,neutral\n"
    "Great work,positive\n"
    "I hate waiting,negative\n"
)
ASK = f"Please try this\nrun: Tone of: {{text}}\nmodels: {MODELS}\nexpected: expected"
_clock = itertools.count(1)


def tone_of(prompt: Prompt) -> str:
    """A model that knows love and hate; the lighter model is wrong about everything else."""
    said = prompt.last_user_text.lower()
    if "love" in said or "great" in said:
        return "positive"
    if "awful" in said or "hate" in said:
        return "negative"
    return "neutral" if prompt.model == "gemini-2.5-flash" else "positive"


def send_run(
    server: BotServer,
    message: str,
    content: str | bytes = CASES,
    *,
    name: str = "cases.csv",
    mimetype: str = "text/csv",
    files: int = 1,
) -> dict[str, Any]:
    """DM the bot `message` with `files` copies of a file; returns the event sent."""
    data = content.encode() if isinstance(content, str) else content
    ts = f"1700003{next(_clock):03d}.000300"
    event: dict[str, Any] = {
        "type": "message",
        "user": USER,
        "text": message,
        "ts": ts,
        "event_ts": ts,
        "channel": DM,
        "channel_type": "im",
    }
    if files:
        event |= {
            "subtype": "file_share",
            "files": [server.slack.add_file(data, name, mimetype) for _ in range(files)],
            "upload": True,
        }
    assert server.send_event(event).status == 200
    return event


def texts_of(params: Any) -> str:
    """Every text of a message (its `text`, and each text of its blocks and their elements)."""
    if isinstance(params, list):
        return " ".join(texts_of(item) for item in params)
    if not isinstance(params, dict):
        return ""
    found = [params["text"]] if isinstance(params.get("text"), str) else []
    found += [texts_of(params[key]) for key in ("text", "blocks", "elements") if key in params]
    return " ".join(part for part in found if part)


def store_of(server: BotServer) -> Store:
    assert server.deps is not None
    return server.deps.store


def generated(server: BotServer) -> int:
    """Generation requests Gemini received (not countTokens, not models.list)."""
    assert server.gemini is not None
    return len(server.gemini.requests("generate", action="generateContent"))


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def updates_of(server: BotServer, ts: str) -> list[str]:
    """The texts a message was updated to, in order."""
    return [texts_of(u.params) for u in server.slack.calls("chat.update") if u.params["ts"] == ts]


def posted(server: BotServer) -> list[SlackCall]:
    return server.slack.calls("chat.postMessage")


def read_csv(data: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data)))


def check_delivered(server: BotServer, experiment_id: int, thread_ts: str, *, results: int) -> None:
    """The results CSV (every result, with the input's columns), then the table, then the chart, in
    the thread."""
    table_file, chart = server.slack.uploads()
    assert table_file.filename == f"cases-experiment-{experiment_id}.csv"
    assert table_file.thread_ts == thread_ts and table_file.channels == [DM]
    rows = read_csv(table_file.text)
    assert len(rows) == results
    assert {"model", "row", "prompt", "answer", "outcome", "score", "input.text", "input.expected"} <= set(
        rows[0]
    )
    by_model = {
        m: [r for r in rows if r["model"] == m] for m in ("gemini-2.5-flash-lite", "gemini-2.5-flash")
    }
    assert [float(r["score"]) for r in by_model["gemini-2.5-flash"]] == [1.0] * 5
    assert [float(r["score"]) for r in by_model["gemini-2.5-flash-lite"]] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert by_model["gemini-2.5-flash"][2]["prompt"] == "Tone of: The meeting is at 3"
    assert by_model["gemini-2.5-flash"][2]["input.expected"] == "neutral"
    (table,) = [p for p in posted(server) if "```" in texts_of(p.params)]
    shown = texts_of(table.params)
    assert table.params["thread_ts"] == thread_ts
    assert "score (95% CI)" in shown and "gemini-2.5-flash-lite" in shown
    assert "80% (" in shown and "100% (" in shown  # 4 of 5 right, 5 of 5 right
    assert chart.filename == f"cases-experiment-{experiment_id}.png" and chart.thread_ts == thread_ts
    assert chart.data.startswith(b"\x89PNG\r\n\x1a\n")
    # The table comes between the two files.
    order = [
        c.method
        for c in server.slack.calls()
        if c.method in ("chat.postMessage", "files.completeUploadExternal")
    ]
    assert order[-3:] == ["files.completeUploadExternal", "chat.postMessage", "files.completeUploadExternal"]


# -- a run that starts at once -----------------------------------------------------------------------


def test_a_cheap_run_starts_at_once_counts_its_progress_and_delivers_the_results(
    make_bot_server: MakeBotServer,
) -> None:
    # A daily limit, so that every call is counted (none is without one).
    server = make_bot_server(env={"GEMBOT_EXPERIMENT_CONCURRENCY": "1", "GEMBOT_USER_DAILY_LIMIT": "100"})
    assert server.gemini is not None
    server.gemini.answer_with(tone_of)
    server.gemini.latency(0.12, on="generate")
    event = send_run(server, ASK)
    server.slack.wait_for("files.completeUploadExternal", count=2, timeout=30)
    server.settle()

    estimate, working = posted(server)[:2]
    assert estimate.params["thread_ts"] == event["ts"] and working.params["thread_ts"] == event["ts"]
    assert "Checking cases.csv" in texts_of(estimate.params)
    (said,) = updates_of(server, estimate.response["ts"])
    assert "*cases.csv*: 5 rows × 2 models." in said
    assert "`gemini-2.5-flash-lite`: 5 requests;" in said and "Estimate: 10 requests to send, about $" in said
    # No --max-output-tokens cap: the output figure is a guess (300 a request), not a bound.
    assert "~1,500 output tokens" in said and "≤" not in said
    progress = updates_of(server, working.response["ts"])
    assert "Starting the experiment on cases.csv" in texts_of(working.params)
    assert len(progress) >= 2 and "is done" in progress[-1]
    assert all("of 10 requests" in p for p in progress[:-1])
    assert any("Running experiment #1 on cases.csv" in p for p in progress[:-1])

    (experiment,) = store_of(server).experiments.find()
    assert (experiment.state, experiment.origin, experiment.created_by) == ("done", "slack", USER)
    assert experiment.spec["models"] == ["gemini-2.5-flash-lite", "gemini-2.5-flash"]
    assert experiment.spec["scoring"]["mode"] == "exact"
    job = store_of(server).jobs.get(experiment.job_id or 0)
    assert (job.kind, job.state, job.rows_done) == (KIND_SLACK, "done", 10)
    assert job.parameters[REPLY_TO]["thread_ts"] == event["ts"]
    assert job.parameters[PROGRESS_TS] == working.response["ts"]
    check_delivered(server, experiment.id, event["ts"], results=10)
    assert generated(server) == 10
    # Every request was charged to the person: models.list and the ten answers (countTokens is free).
    assert server.gemini is not None
    listed = len(server.gemini.requests("models", action="models.list"))
    usage = store_of(server).usage(server.team, USER, datetime.now(UTC).date())
    assert usage.user == listed + 10


def test_the_default_model_and_a_jsonl_file(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.answer_with(tone_of)
    lines = '{"text": "I love this", "n": 1}\n{"text": "I hate waiting", "n": 2}\n'
    send_run(bot_server, "run:\n```Tone of: {text}```", lines, name="cases.jsonl", mimetype="text/plain")
    bot_server.slack.wait_for("files.completeUploadExternal", count=2, timeout=30)
    bot_server.settle()
    (experiment,) = store_of(bot_server).experiments.find()
    assert experiment.spec["models"] == [bot_server.settings.generation_model]
    assert experiment.spec["template"] == "Tone of: {text}"
    results = read_csv(bot_server.slack.uploads()[0].text)
    assert [(r["prompt"], r["answer"], r["input.n"]) for r in results] == [
        ("Tone of: I love this", "positive", "1"),
        ("Tone of: I hate waiting", "negative", "2"),
    ]


# -- bad input: one line, nothing stored, nothing generated -------------------------------------------


@pytest.mark.parametrize(
    ("message", "content", "said"),
    [
        ("run: Say hello\nmodels: gemini-2.5-flash", CASES, "The template has no {column} placeholder"),
        (
            "run: Tone of {message}",
            CASES,
            "The template uses {message}, but cases.csv has no such column (its columns: text, expected)",
        ),
        ("run: Tone of {text}", "text\nfine\ntoo,many\n", "cases.csv row 2 has 2 cells but the header has 1"),
        ("run: Tone of {text}", b"text\n\x00\x01\x02\n", "cases.csv is not a text file"),
        (
            "run: Tone of {text}\nmodels: gemini-2.5-flash, gemini-9-ultra",
            CASES,
            "Unknown model gemini-9-ultra (not in models.list for this API key)",
        ),
        (
            "run: Tone of {text}\nscore: exact",
            CASES,
            "`score:` exact needs `expected: COLUMN`, the column of right answers",
        ),
        ("run: Tone of {text}\nexpected: answer", CASES, "`expected:` 'answer' is not a column of cases.csv"),
        ("run: Tone of {text}\nscore: sometimes\nexpected: expected", CASES, "Unknown `score:` 'sometimes'"),
    ],
    ids=[
        "no-placeholder",
        "unknown-column",
        "unreadable-csv",
        "not-text",
        "unknown-model",
        "score-without-expected",
        "expected-not-a-column",
        "unknown-score",
    ],
)
def test_bad_input_gets_one_line_and_nothing_is_stored_or_sent(
    bot_server: BotServer, message: str, content: str | bytes, said: str
) -> None:
    event = send_run(bot_server, message, content)
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.settle()
    (working,) = posted(bot_server)
    assert working.params["thread_ts"] == event["ts"] and update.params["ts"] == working.response["ts"]
    line = str(update.params["text"])
    assert line.startswith(":warning: ") and said in line, line
    assert "\n" not in line and "Traceback" not in line
    assert store_of(bot_server).experiments.find() == []
    assert store_of(bot_server).jobs.find() == []
    assert generated(bot_server) == 0
    assert bot_server.slack.uploads() == []


def test_a_template_with_no_placeholder_is_refused_before_the_file_is_fetched(bot_server: BotServer) -> None:
    send_run(bot_server, "run: Say hello")
    bot_server.slack.wait_for("chat.update")
    bot_server.settle()
    assert bot_server.slack.calls("download") == []
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []


def test_run_without_a_file_gets_a_hint(bot_server: BotServer) -> None:
    send_run(bot_server, "run: Tone of {text}", files=0)
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    bot_server.settle()
    assert post.params["text"] == experiment_runs.NEED_A_FILE
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []
    send_run(bot_server, "run: Tone of {text}", files=2)
    second = bot_server.slack.wait_for("chat.postMessage", count=2)[1]
    assert second.params["text"].startswith("Send one CSV or JSONL file with `run:`, not 2")
    bot_server.settle()
    assert store_of(bot_server).experiments.find() == []


# -- a usage limit stops the run -------------------------------------------------------------------


def test_a_usage_limit_stops_the_run_with_the_reason_and_the_results_so_far(
    make_bot_server: MakeBotServer,
) -> None:
    # models.list takes one call of four; the first three answers the rest.
    server = make_bot_server(env={"GEMBOT_USER_DAILY_LIMIT": "4", "GEMBOT_EXPERIMENT_CONCURRENCY": "1"})
    assert server.gemini is not None
    server.gemini.answer_with(tone_of)
    event = send_run(server, ASK)
    server.slack.wait_for("files.completeUploadExternal", count=1, timeout=30)
    server.settle()
    working = posted(server)[1]
    stopped = updates_of(server, working.response["ts"])[-1]
    assert stopped.startswith(
        ":warning: Experiment #1 stopped at 3 of 10 requests: you have used your 4 Gemini"
    )
    assert "The results so far are below" in stopped
    assert generated(server) == 3
    (partial,) = server.slack.uploads()  # the CSV, no chart
    assert partial.thread_ts == event["ts"]
    assert [(r["model"], r["row"]) for r in read_csv(partial.text)] == [
        ("gemini-2.5-flash-lite", str(n)) for n in (1, 2, 3)
    ]
    assert any("```" in texts_of(p.params) for p in posted(server))
    (experiment,) = store_of(server).experiments.find()
    assert experiment.state == "failed" and "4 Gemini calls for today" in (experiment.error or "")
    job = store_of(server).jobs.get(experiment.job_id or 0)
    assert job.state == "failed"


# -- resuming --------------------------------------------------------------------------------------


def test_a_slack_experiment_left_queued_is_resumed_and_a_command_line_one_is_not(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url)
    assert server.gemini is not None and server.deps is not None
    server.gemini.answer_with(tone_of)
    runner = server.deps.experiments
    cases = Cases(("text", "expected"), tuple(read_csv(CASES)))
    spec = ExperimentSpec(
        template="Tone of: {text}",
        models=("gemini-2.5-flash-lite", "gemini-2.5-flash"),
        scoring=Scoring.parse(None, expected="expected", judge_model=None),
    )
    thread = "1700004000.000100"
    progress = server.slack.add_message(DM, "Running…", user=server.slack.bot_user_id, thread_ts=thread)
    where = ReplyTo(channel=DM, user=USER, thread_ts=thread, team=server.team)
    cli, cli_job = runner.create(
        server.team, spec, cases, name="cli", source="cli.csv", kind=KIND_CLI, hold=False
    )
    slack, _ = runner.create(
        server.team,
        spec,
        cases,
        name="cases.csv",
        source="cases.csv",
        kind=KIND_SLACK,
        created_by=USER,
        parameters={REPLY_TO: where.to_json(), PROGRESS_TS: progress["ts"]},
        hold=False,
    )

    server.restart(keep_calls=True)  # the next process's resumer takes the job over as it starts
    wait_until(lambda: len(server.slack.uploads()) == 2, what="the results")
    assert server.deps is not None
    wait_until(
        lambda: server.deps is not None and server.deps.store.experiments.get(slack.id).state == "done"
    )
    check_delivered(server, slack.id, thread, results=10)
    shown = updates_of(server, progress["ts"])
    assert f"Carrying on with experiment #{slack.id} on cases.csv: 0 of 10 requests" in shown[0]
    assert "is done" in shown[-1]
    # The command line's experiment is the command line's to carry on: no server takes it.
    assert server.deps.store.jobs.get(cli_job.id).state == "queued"
    assert server.deps.store.experiments.results(cli.id) == []
    assert generated(server) == 10


def test_an_experiment_taken_over_too_often_is_given_up(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server()
    assert server.deps is not None
    cases = Cases(("text", "expected"), tuple(read_csv(CASES)))
    spec = ExperimentSpec(template="Tone of: {text}", models=("gemini-2.5-flash",))
    thread = "1700005000.000100"
    progress = server.slack.add_message(DM, "Running…", user=server.slack.bot_user_id, thread_ts=thread)
    where = ReplyTo(channel=DM, user=USER, thread_ts=thread, team=server.team)
    experiment, job = server.deps.experiments.create(
        server.team,
        spec,
        cases,
        name="cases.csv",
        source="cases.csv",
        kind=KIND_SLACK,
        created_by=USER,
        parameters={REPLY_TO: where.to_json(), PROGRESS_TS: progress["ts"]},
        hold=False,
    )
    store = server.deps.store
    for _ in range(MAX_ATTEMPTS):  # five processes took it and died
        store.jobs.claim(owner="dead", lease_seconds=60, job_id=job.id)
        store.jobs.release(job.id, owner="dead")

    server.restart(keep_calls=True)
    wait_until(lambda: store_of(server).jobs.get(job.id).state == "failed", what="the job to be given up")
    wait_until(lambda: any("gave up" in said for said in updates_of(server, progress["ts"])), what="the news")
    said = updates_of(server, progress["ts"])[-1]
    assert said.startswith(f":warning: Experiment #{experiment.id} was interrupted {MAX_ATTEMPTS} times")
    assert store_of(server).experiments.get(experiment.id).state == "failed"
    assert generated(server) == 0


def test_a_restart_mid_run_gives_the_job_back_and_the_next_process_carries_on(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env={"GEMBOT_EXPERIMENT_CONCURRENCY": "1"})
    assert server.gemini is not None
    # The fourth answer is held until the server is stopping: SIGTERM comes mid-run.
    held, release, answered = threading.Event(), threading.Event(), itertools.count(1)

    def answer(prompt: Prompt) -> str:
        if next(answered) == 4:
            held.set()
            assert release.wait(30), "the test never released the held answer"
        return tone_of(prompt)

    server.gemini.answer_with(answer)
    event = send_run(server, ASK)
    assert held.wait(20), "the run never reached its fourth request"
    stopping = server.deps
    assert stopping is not None
    restarting = threading.Thread(target=server.restart, kwargs={"keep_calls": True})
    restarting.start()
    wait_until(lambda: stopping.experiments.stopping, what="the server to start stopping")
    release.set()  # the answer in flight is kept, and the job given back
    restarting.join(30)
    assert not restarting.is_alive()
    wait_until(lambda: len(server.slack.uploads()) == 2, what="the results")
    (experiment,) = store_of(server).experiments.find()
    wait_until(lambda: store_of(server).experiments.get(experiment.id).state == "done", what="done")
    check_delivered(server, experiment.id, event["ts"], results=10)
    assert generated(server) == 10  # nothing asked twice
    working = posted(server)[1]
    shown = updates_of(server, working.response["ts"])
    (paused,) = [n for n, said in enumerate(shown) if f"Paused experiment #{experiment.id} at" in said]
    assert "at 4 of 10 requests while I restart" in shown[paused]
    assert f"Carrying on with experiment #{experiment.id} on cases.csv: 4 of 10 requests" in shown[paused + 1]
    assert "is done" in shown[-1]
    # The job is marked done just after the last upload.
    wait_until(lambda: store_of(server).jobs.get(experiment.job_id or 0).state == "done", what="the job done")
    assert store_of(server).jobs.get(experiment.job_id or 0).attempts == 2


# -- the pure parts --------------------------------------------------------------------------------


def test_what_a_run_message_asks() -> None:
    asked = experiment_runs.parse_request(
        "Hi!\n*Run:* Classify the tone of:\n{text}\nAnswer in one word.\n"
        "Models: a,  b\nexpected: `label`\nscore: contains\n\nthanks"
    )
    assert asked == experiment_runs.RunRequest(
        "Classify the tone of:\n{text}\nAnswer in one word.",
        models="a,  b",
        expected="label",
        score="contains",
    )
    # A paragraph ends the template; Slack's escapes are undone.
    assert experiment_runs.parse_request("run: Is {a} &lt; {b}?\n\nmodel: x").template == "Is {a} < {b}?"
    assert experiment_runs.parse_request("run:\n\n`{text}`").template == "{text}"
    assert experiment_runs.asks_for_a_run("please\nrun: {text}")
    assert not experiment_runs.asks_for_a_run("how do I run: a thing?")
    assert not experiment_runs.asks_for_a_run("can you rerun this")
    with pytest.raises(InvalidInput, match="no prompt template"):
        experiment_runs.parse_request("run:   \nmodels: a")
    with pytest.raises(InvalidInput, match="`models:` is given twice"):
        experiment_runs.parse_request("run: {x}\nmodels: a\nmodel: b")


def test_the_cli_flags_are_named_as_the_keys_of_a_dm() -> None:
    worded = experiment_runs.slack_words(
        InvalidInput("--score exact needs --expected COLUMN, the column of right answers")
    )
    assert str(worded) == "`score:` exact needs `expected: COLUMN`, the column of right answers"
