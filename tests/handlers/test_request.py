"""One Slack request, read once (`handlers.request.SlackRequest`), where it is answered
(`handlers.replies.ReplyTo`, which a bulk job keeps as JSON), and listeners as plain functions.

The constructors read the payloads Slack sends (shapes as in Slack's docs and the scenario
tests); the listener tests call module-level listeners directly, as Bolt would, with a recording
`ack` and a context holding the process's `Deps`.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.lifecycle import JobResumer
from core.bulk_runner import KIND_CLASSIFY_CSV, CsvJob
from core.daily_limits import Actor
from core.store import ExampleInput, JobRecord
from handlers import bulk
from handlers.commands import ask, classify
from handlers.deps import CONTEXT_KEY, NOT_CONFIGURED, Deps
from handlers.replies import ReplyTo, UnknownReplyTo
from handlers.request import SlackRequest
from tests.support.gemini import GeminiStandIn
from tests.support.slack_fixtures import BotServer, MakeBotServer, bot_settings
from tests.support.slack_standin import SlackStandIn

TOKEN = "xoxb-not-for-logs"


def context(**fields: Any) -> BoltContext:
    """A Bolt context as an authorized request has it: the team, the client, the bot token."""
    client = WebClient(token=TOKEN)
    return BoltContext({"team_id": "T1", "client": client, "bot_token": TOKEN, **fields})


# -- constructors ----------------------------------------------------------------------------------


def test_a_command() -> None:
    command = {
        "command": "/ask",
        "text": "why?",
        "team_id": "T1",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": "https://hooks.slack.com/commands/T1/1/x",
    }
    request = SlackRequest.of_command(command, context())
    assert (request.workspace, request.team, request.enterprise) == ("T1", "T1", None)
    assert (request.user, request.channel, request.thread_ts, request.message_ts) == ("U1", "C1", None, None)
    assert request.response_url == "https://hooks.slack.com/commands/T1/1/x"
    assert request.token == TOKEN and request.client.token == TOKEN
    assert TOKEN not in repr(request)
    assert request.actor == Actor("T1", "U1")
    assert request.replier.to == request.reply_to()
    assert request.replier is request.replier  # one replier per request


def test_an_app_mention_starts_a_thread_or_carries_one_on() -> None:
    event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "1.1", "channel": "C1"}
    request = SlackRequest.of_event(event, context())
    assert (request.channel, request.thread_ts, request.message_ts) == ("C1", "1.1", "1.1")
    assert request.response_url is None
    in_thread = SlackRequest.of_event({**event, "ts": "1.5", "thread_ts": "1.1"}, context())
    assert (in_thread.thread_ts, in_thread.message_ts) == ("1.1", "1.5")


def test_a_direct_message() -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "user": "U1",
        "text": "hi",
        "ts": "2.1",
        "channel": "D1",
    }
    request = SlackRequest.of_event(event, context())
    assert request.reply_to() == ReplyTo(channel="D1", user="U1", thread_ts="2.1", team="T1")
    home = SlackRequest.of_event({"type": "app_home_opened", "user": "U1"}, context(), in_thread=False)
    assert (home.channel, home.thread_ts) == ("", None)


def test_a_block_actions_body() -> None:
    body = {
        "type": "block_actions",
        "user": {"id": "U1", "team_id": "T1"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": "3.1", "channel_id": "C1"},
        "message": {"ts": "3.1", "thread_ts": "3.0", "text": "answer"},
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{"action_id": "classify_correct", "value": "billing"}],
    }
    request = SlackRequest.of_action(body, context())
    assert (request.user, request.channel, request.thread_ts, request.message_ts) == (
        "U1",
        "C1",
        "3.0",
        "3.1",
    )
    assert request.response_url == "https://hooks.slack.com/actions/T1/1/x"
    # A button in a modal: no channel, no message.
    modal = SlackRequest.of_action({"user": {"id": "U1"}, "container": {"type": "view"}}, context())
    assert (modal.channel, modal.message_ts, modal.response_url) == ("", None, None)


def test_a_view_submission() -> None:
    body = {"type": "view_submission", "user": {"id": "U1"}, "view": {"private_metadata": "{}"}}
    request = SlackRequest.of_view(body, context(), channel="C1", response_url="https://hooks.slack.com/x")
    assert (request.user, request.channel, request.response_url) == ("U1", "C1", "https://hooks.slack.com/x")
    bare = SlackRequest.of_view(
        {**body, "response_urls": [{"response_url": "https://hooks.slack.com/y", "channel_id": "C2"}]},
        context(),
    )
    assert (bare.channel, bare.response_url) == ("", "https://hooks.slack.com/y")


def test_a_message_shortcut() -> None:
    body = {
        "type": "message_action",
        "callback_id": "add_label_example",
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "message_ts": "4.1",
        "message": {"ts": "4.1", "user": "U2", "text": "the printer is on fire"},
        "response_url": "https://hooks.slack.com/app/T1/1/x",
        "trigger_id": "t1",
    }
    request = SlackRequest.of_shortcut(body, context())
    assert (request.user, request.channel, request.message_ts) == ("U1", "C1", "4.1")
    assert request.response_url == "https://hooks.slack.com/app/T1/1/x"


def test_enterprise_grid_keys_name_the_enterprise() -> None:
    command = {"user_id": "U1", "channel_id": "C1"}
    request = SlackRequest.of_command(command, context(enterprise_id="E1"))
    assert (request.workspace, request.team, request.enterprise) == ("E1:T1", "T1", "E1")
    assert request.actor == Actor("E1:T1", "U1")
    assert (request.reply_to().team, request.reply_to().enterprise) == ("T1", "E1")


# -- ReplyTo as JSON -------------------------------------------------------------------------------


def test_reply_to_round_trips_through_json() -> None:
    to = ReplyTo(
        channel="D1",
        user="U1",
        thread_ts="1.1",
        response_url="https://hooks.slack.com/x",
        team="T1",
        enterprise="E1",
    )
    stored = json.loads(json.dumps(to.to_json()))
    assert stored["v"] == 1
    assert ReplyTo.from_json(stored) == to
    assert ReplyTo.from_json(ReplyTo(channel="C1").to_json()) == ReplyTo(channel="C1")


@pytest.mark.parametrize(
    "stored",
    [
        {"v": 2, "channel": "C1"},
        {"channel": "C1"},
        {"v": 1},
        {"v": 1, "channel": 5},
        ["C1"],
    ],
)
def test_reply_to_refuses_what_it_cannot_read(stored: Any) -> None:
    with pytest.raises(UnknownReplyTo):
        ReplyTo.from_json(stored)


def job(team_id: str, parameters: dict[str, Any]) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        id=1,
        team_id=team_id,
        kind=KIND_CLASSIFY_CSV,
        state="queued",
        input=b"text\nhi\n",
        parameters=parameters,
        rows_total=1,
        rows_done=0,
        error=None,
        owner=None,
        lease_expires_at=None,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


def test_a_job_reads_back_where_it_answers_in_either_shape() -> None:
    spec = CsvJob(set_name="default", file_name="t.csv", user_id="U1", labels=("a", "b")).parameters()
    to = ReplyTo(channel="D1", user="U1", thread_ts="1.1", team="T1", enterprise="E1")
    assert bulk.reply_to_of(job("E1:T1", spec | {"reply_to": to.to_json(), "message_ts": "1.2"})) == to
    # As the code before ReplyTo stored it: loose keys, the team inside the workspace key.
    old = spec | {"channel": "D1", "thread_ts": "1.1", "message_ts": "1.2", "enterprise_id": "E1"}
    assert bulk.reply_to_of(job("E1:T1", old)) == to
    plain = spec | {"channel": "D1", "thread_ts": "1.1", "message_ts": "1.2", "enterprise_id": None}
    assert bulk.reply_to_of(job("T1", plain)) == ReplyTo(channel="D1", user="U1", thread_ts="1.1", team="T1")


def test_a_job_stored_by_the_old_code_still_resumes(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server()
    assert server.deps is not None
    store = server.deps.store
    store.add_examples(server.team, "default", _examples())
    progress = server.slack.add_message("D0HUMAN", "Classifying tickets.csv…", user=server.slack.bot_user_id)
    spec = CsvJob(
        set_name="default", file_name="tickets.csv", user_id="U0HUMAN", labels=("billing", "shipping")
    )
    store.jobs.create(
        server.team,
        kind=KIND_CLASSIFY_CSV,
        input="text\nrefund my card\nmy parcel is late\n",
        rows_total=2,
        parameters=spec.parameters()
        | {
            "channel": "D0HUMAN",
            "thread_ts": "1700000000.000100",
            "message_ts": progress["ts"],
            "enterprise_id": None,
        },
    )
    server.restart(keep_calls=True)  # the new process takes the queued job over as it starts
    table, chart = _uploads(server)
    assert table.filename == "tickets-classified.csv" and chart.filename == "tickets-labels.png"
    assert table.channels == ["D0HUMAN"] and table.thread_ts == "1700000000.000100"
    updates = server.slack.calls("chat.update")
    assert updates and all(u.params["ts"] == progress["ts"] for u in updates)
    assert server.deps is not None
    # The uploads go out just before the job records that it is done: wait (bounded) for that.
    deadline = time.monotonic() + 10
    while (stored := server.deps.store.jobs.find()[0]).state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (stored.state, stored.rows_done) == ("done", 2)


def _examples() -> list[ExampleInput]:
    return [
        ExampleInput("billing", "my card was charged twice"),
        ExampleInput("billing", "refund my payment please"),
        ExampleInput("shipping", "where is my parcel"),
        ExampleInput("shipping", "the delivery is late"),
    ]


def _uploads(server: BotServer) -> list[Any]:
    deadline = time.monotonic() + 30
    while len(server.slack.uploads()) < 2:
        assert time.monotonic() < deadline, "the resumed job never delivered"
        time.sleep(0.02)
    return list(server.slack.uploads())


# -- listeners are functions -----------------------------------------------------------------------


@pytest.fixture
def deps(slack_standin: SlackStandIn, sqlite_template: Path, tmp_path: Path) -> Any:
    path = tmp_path / "gembot.db"
    shutil.copyfile(sqlite_template, path)
    opened = Deps.open(bot_settings(slack_standin, None, f"sqlite:///{path}"), migrate=False)
    yield opened
    opened.close()


def test_a_listener_is_a_function_called_with_a_recorded_ack(deps: Deps) -> None:
    acks: list[dict[str, Any]] = []

    def ack(**said: Any) -> None:
        acks.append(said)

    listener_context = BoltContext({CONTEXT_KEY: deps})
    ask.acknowledge_ask(ack=ack, command={"text": "  "}, context=listener_context)
    ask.acknowledge_ask(ack=ack, command={"text": "why?"}, context=listener_context)
    ask.acknowledge_ask(ack=ack, command={"text": "x" * 5_000}, context=listener_context)
    assert acks[0] == {"text": ask.USAGE, "response_type": "ephemeral"}
    assert acks[1] == {"text": NOT_CONFIGURED, "response_type": "ephemeral"}  # no Gemini key here
    assert acks[2]["text"].startswith("Your question is 5,000 characters long")


def test_a_lazy_listener_charges_its_gemini_calls_to_the_requester(
    slack_standin: SlackStandIn, gemini_standin: GeminiStandIn, sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "gembot.db"
    shutil.copyfile(sqlite_template, path)
    settings = bot_settings(
        slack_standin, gemini_standin, f"sqlite:///{path}", env={"GEMBOT_USER_DAILY_LIMIT": "5"}
    )
    deps = Deps.open(settings, migrate=False)
    try:
        client = WebClient(token=slack_standin.bot_token, base_url=slack_standin.api_url)
        listener_context = BoltContext(
            {CONTEXT_KEY: deps, "team_id": "T1", "client": client, "bot_token": slack_standin.bot_token}
        )
        command = {"text": "why is the sky blue?", "user_id": "U0ANA", "channel_id": "C0GENERAL"}
        # On a thread of its own, as Bolt's executor runs a lazy listener: nothing is inherited.
        worker = threading.Thread(target=ask.answer_ask, args=(command, listener_context))
        worker.start()
        worker.join(30)
        assert len(gemini_standin.requests("generate")) == 1
        today = datetime.now(UTC).date()
        assert deps.store.usage("T1", "U0ANA", today).user == 1
        assert deps.store.usage("T1", "U0BO", today).user == 0
    finally:
        deps.close()


# -- /classify reads its label set once for the check ----------------------------------------------


def test_the_lazy_classify_trusts_the_acks_check_of_the_set(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server()
    assert server.deps is not None
    store = server.deps.store
    store.add_examples(server.team, "default", _examples())
    reads: list[str] = []
    get_set = store.get_set

    def counted(team_id: str, set_name: str) -> Any:
        reads.append(threading.current_thread().name)
        return get_set(team_id, set_name)

    store.get_set = counted  # type: ignore[method-assign]
    reply = server.send_command("/classify", "refund my card please")
    assert reply.status == 200 and reply.body == ""
    server.slack.wait_for("chat.update")
    server.settle()
    # The ack's check, and the engine finding its model: not a third time by the lazy listener.
    assert len(reads) == 2
    reads.clear()
    refused = server.send_command("/classify", "set:nope refund my card please")
    assert "There is no label set *nope*" in refused.json()["text"]
    server.settle()
    assert len(reads) == 1  # the ack's alone: the lazy listener posted nothing and read nothing
    assert len(server.slack.calls("chat.postMessage")) == 1


def test_ack_verdicts_are_handed_over_once() -> None:
    verdicts = classify.AckVerdicts(wait=0.05)
    verdicts.tell("t1", True)
    verdicts.tell("t2", False)
    verdicts.tell("t3", None)
    assert (verdicts.take("t1"), verdicts.take("t2"), verdicts.take("t3")) == (True, False, None)
    assert verdicts.take("t1") is None  # taken already: no word in time
    # The lazy listener may ask before the ack has said.
    waiting = classify.AckVerdicts(wait=5)
    later = threading.Timer(0.05, waiting.tell, args=("t4", True))
    later.start()
    assert waiting.take("t4") is True
    # Verdicts nobody takes are forgotten, oldest first.
    few = classify.AckVerdicts(wait=0.01, kept=2)
    for n in range(3):
        few.tell(f"t{n}", True)
    assert [few.take("t2"), few.take("t1"), few.take("t0")] == [True, True, None]


def test_a_job_whose_reply_to_this_version_cannot_read_fails_in_words() -> None:
    failed: list[tuple[int, str]] = []
    jobs = SimpleNamespace(fail=lambda job, why: failed.append((job.id, why)))
    deps = SimpleNamespace(settings=SimpleNamespace(job_lease_seconds=60), jobs=jobs)
    asked: list[JobRecord] = []
    resumer = JobResumer(deps, client_for=lambda job: asked.append(job))  # type: ignore[arg-type]
    spec = CsvJob(set_name="default", file_name="t.csv", user_id="U1", labels=("a", "b")).parameters()
    resumer._resume(job("T1", spec | {"reply_to": {"v": 2, "channel": "D1"}}))
    resumer.executor.shutdown()
    assert failed == [(1, "where to answer was stored in a format I cannot read (v=2)")]
    assert asked == []  # no Slack client was looked for
