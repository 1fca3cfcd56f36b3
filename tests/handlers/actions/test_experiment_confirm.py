"""The **Run it** / **Cancel** buttons of an experiment whose estimate is above
GEMBOT_EXPERIMENT_CONFIRM_COST, through the app and the Slack and Gemini stand-ins: it waits with
nothing sent, runs once however often it is pressed, only for the person who sent the file, and
a cancelled one never runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from handlers import experiment_runs
from tests.handlers.test_experiment_runs import (
    ASK,
    DM,
    USER,
    check_delivered,
    generated,
    posted,
    send_run,
    store_of,
    texts_of,
    tone_of,
    updates_of,
)
from tests.support.slack_fixtures import BotServer, MakeBotServer
from tests.support.slack_standin import SlackCall

ASKS_FIRST = {"GEMBOT_EXPERIMENT_CONFIRM_COST": "0"}


def waiting(server: BotServer) -> tuple[dict[str, Any], SlackCall, int]:
    """Send the experiment and wait for its buttons: (the event, the buttons' message, the id)."""
    assert server.gemini is not None
    server.gemini.answer_with(tone_of)
    event = send_run(server, ASK)
    server.slack.wait_for("chat.postMessage", count=2)
    server.settle()
    buttons = posted(server)[1]
    (experiment,) = store_of(server).experiments.find()
    return event, buttons, experiment.id


def press(
    server: BotServer, action_id: str, buttons: SlackCall, event: dict[str, Any], *, user_id: str = USER
) -> str:
    """Press a button of `buttons` as `user_id`; returns the response_url it came with."""
    (block,) = [b for b in buttons.params["blocks"] if b["type"] == "actions"]
    (button,) = [e for e in block["elements"] if e["action_id"] == action_id]
    url = server.slack.response_url()
    message = {
        "type": "message",
        "ts": buttons.response["ts"],
        "thread_ts": event["ts"],
        "text": buttons.params["text"],
        "blocks": buttons.params["blocks"],
        "user": server.slack.bot_user_id,
    }
    reply = server.send_action(
        action_id,
        value=button["value"],
        block_id=block["block_id"],
        user_id=user_id,
        channel_id=DM,
        message=message,
        response_url=url,
    )
    assert reply.status == 200 and reply.elapsed < 3.0
    return url


def test_an_expensive_run_waits_with_nothing_sent(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ASKS_FIRST)
    event, buttons, experiment_id = waiting(server)
    assert buttons.params["thread_ts"] == event["ts"]
    question = texts_of(buttons.params)
    assert "above $0.0000 (GEMBOT_EXPERIMENT_CONFIRM_COST)" in question
    assert f"Run experiment #{experiment_id}?" in question
    (block,) = [b for b in buttons.params["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["text"]["text"], e["value"]) for e in block["elements"]] == [
        (experiment_runs.RUN_ACTION, "Run it", str(experiment_id)),
        (experiment_runs.CANCEL_ACTION, "Cancel", str(experiment_id)),
    ]
    assert block["elements"][0]["style"] == "primary"
    assert store_of(server).experiments.get(experiment_id).state == "pending"
    assert store_of(server).jobs.find() == []
    assert generated(server) == 0


def test_run_it_runs_once_however_often_it_is_pressed(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ASKS_FIRST)
    event, buttons, experiment_id = waiting(server)
    press(server, experiment_runs.RUN_ACTION, buttons, event)
    press(server, experiment_runs.RUN_ACTION, buttons, event)
    server.slack.wait_for("files.completeUploadExternal", count=2, timeout=30)
    server.settle()
    assert generated(server) == 10
    (job,) = store_of(server).jobs.find()
    assert (job.state, job.rows_done) == ("done", 10)
    assert store_of(server).experiments.get(experiment_id).state == "done"
    # The buttons' message says it started, then counts, then says it is done: no buttons left.
    shown = updates_of(server, buttons.response["ts"])
    assert shown[0].startswith(f"Started experiment #{experiment_id}…")
    assert "is done" in shown[-1]
    last = [u for u in server.slack.calls("chat.update") if u.params["ts"] == buttons.response["ts"]][-1]
    assert all(b["type"] != "actions" for b in last.params["blocks"])
    check_delivered(server, experiment_id, event["ts"], results=10)


def test_only_the_person_who_sent_the_file_can_press(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ASKS_FIRST)
    event, buttons, experiment_id = waiting(server)
    for action_id in (experiment_runs.RUN_ACTION, experiment_runs.CANCEL_ACTION):
        url = press(server, action_id, buttons, event, user_id="U0OTHER")
        (said,) = server.slack.wait_for_response(url)
        assert said["response_type"] == "ephemeral"
        assert (
            said["text"]
            == f":no_entry: Only <@{USER}>, who sent the file, can run or cancel this experiment."
        )
    server.settle()
    assert store_of(server).experiments.get(experiment_id).state == "pending"
    assert store_of(server).jobs.find() == []
    assert generated(server) == 0
    assert updates_of(server, buttons.response["ts"]) == []


def test_cancel_ends_it_unrun(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ASKS_FIRST)
    event, buttons, experiment_id = waiting(server)
    press(server, experiment_runs.CANCEL_ACTION, buttons, event)
    (update,) = server.slack.wait_for("chat.update", count=2)[1:]
    server.settle()
    assert update.params["ts"] == buttons.response["ts"]
    assert f"Cancelled: experiment #{experiment_id} was not run" in texts_of(update.params)
    assert all(b["type"] != "actions" for b in update.params["blocks"])
    assert store_of(server).experiments.get(experiment_id).state == "cancelled"
    # A press of Run it left on screen elsewhere does nothing now.
    press(server, experiment_runs.RUN_ACTION, buttons, event)
    server.settle()
    assert store_of(server).jobs.find() == []
    assert generated(server) == 0


def test_a_button_naming_an_experiment_not_on_record_does_nothing(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ASKS_FIRST)
    event, buttons, experiment_id = waiting(server)
    forged = dict(buttons.params)
    forged["blocks"] = [
        b if b["type"] != "actions" else experiment_runs.confirmation_blocks(experiment_id + 100, "x")[1]
        for b in buttons.params["blocks"]
    ]
    url = press(server, experiment_runs.RUN_ACTION, replace(buttons, params=forged), event)
    (said,) = server.slack.wait_for_response(url)
    assert said["text"].startswith(":warning: That experiment is no longer on record")
    server.settle()
    assert store_of(server).experiments.get(experiment_id).state == "pending"
    assert generated(server) == 0
