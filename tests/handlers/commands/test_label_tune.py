"""`/label tune` through the running HTTP app: the request, the background re-tune it starts (a
real `Engine.tune`, over the bag-of-words embedder: an adapter, in well under a second), the DM
to whoever asked, and App Home's line on a set's tuning."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from core.embeddings.tuned import base_id
from core.store import TunedEncoderInput
from tests.support.label_support import seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

DM = "D0HUMAN"  # U0HUMAN's DM with the bot, as the stand-in's conversations.open names it


def label(server: BotServer, typed: str) -> str:
    """Send `/label typed`; the private answer it got through the response_url."""
    reply = server.send_command("/label", typed)
    assert reply.status == 200 and reply.body == "", reply.body
    (answer,) = server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


def jobs(server: BotServer) -> list[tuple[str, str | None]]:
    assert server.deps is not None
    return [(j.set_name, j.requested_by) for j in server.deps.store.tune_jobs(server.team)]


def test_label_tune_asks_for_a_tune_and_says_when_it_runs(bot_server: BotServer) -> None:
    seed(bot_server, "billing")
    answer = label(bot_server, "tune billing")
    assert answer == (
        ":gear: Tuning *billing* in the background once its edits have settled (about 10 minutes); "
        "I'll DM you when it is done. Until then `/classify` uses what it used before."
    )
    assert jobs(bot_server) == [("billing", "U0HUMAN")]


def test_label_tune_takes_the_set_as_set_colon_name_too(bot_server: BotServer) -> None:
    seed(bot_server, "billing")
    seed(bot_server)
    assert label(bot_server, "set:billing tune").startswith(":gear: Tuning *billing* in the background")
    assert label(bot_server, "tune").startswith(":gear: Tuning *default* in the background")
    assert jobs(bot_server) == [("billing", "U0HUMAN"), ("default", "U0HUMAN")]


def test_label_tune_naming_two_sets_gets_its_usage_in_the_ack(bot_server: BotServer) -> None:
    for typed in ("tune billing set:shipping", "set:shipping tune billing"):
        reply = bot_server.send_command("/label", typed)
        assert reply.status == 200
        assert reply.json()["response_type"] == "ephemeral"
        assert reply.json()["text"].startswith("Usage: `/label tune NAME`")
    bot_server.settle()
    assert bot_server.slack.calls() == []
    assert jobs(bot_server) == []


def test_label_tune_of_an_unknown_set_says_which_sets_there_are(bot_server: BotServer) -> None:
    seed(bot_server, "billing")
    answer = label(bot_server, "tune nosuch")
    assert answer == (
        "There is no label set *nosuch* in this workspace; it has *billing*. "
        "Name one with `/label tune set:NAME …`."
    )
    assert jobs(bot_server) == []


def test_label_tune_needs_two_labels(bot_server: BotServer) -> None:
    seed(bot_server, "mood", labels={"happy": ["a great day", "a fine day"]})
    answer = label(bot_server, "tune mood")
    assert answer.startswith(
        "Label set *mood* needs at least two labels with examples to be tuned (it has 1)"
    )
    assert jobs(bot_server) == []


def test_label_tune_needs_the_right_to_change_the_set(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_CURATION": "admins"})
    seed(server, "billing")
    answer = label(server, "tune billing")
    assert answer.startswith(":no_entry: Only admins can change label sets")
    assert jobs(server) == []
    server.slack.add_user("U0BOSS", is_admin=True)
    reply = server.send_command("/label", "tune billing", user_id="U0BOSS")
    server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    assert jobs(server) == [("billing", "U0BOSS")]


def test_label_tune_when_background_tuning_is_off(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_RETUNE": "0"})
    seed(server, "billing")
    answer = label(server, "tune billing")
    assert answer.startswith("Tuning in the background is off here (GEMBOT_RETUNE=0)")
    assert jobs(server) == []


def test_a_requested_tune_runs_in_the_background_and_the_requester_gets_a_dm(
    make_bot_server: MakeBotServer,
) -> None:
    # No settling: the server's re-tuner looks every second and takes the job at once.
    server = make_bot_server(env={"GEMBOT_RETUNE_SETTLE": "0"})
    seed(server, "billing")
    assert label(server, "tune billing").startswith(":gear: Tuning *billing* in the background now;")
    (posted,) = server.slack.wait_for("chat.postMessage", timeout=60)
    assert posted.params["channel"] == DM
    assert server.slack.last("conversations.open").params["users"] == "U0HUMAN"
    said = str(posted.params["text"])
    assert server.deps is not None
    store = server.deps.store
    figures = re.search(r"(\d+\.\d)% vs (\d+\.\d)% plain on \d+ held-out examples", said)
    assert figures is not None, said
    tuned = store.tuned_encoder(server.team, "billing")
    # Kept exactly when it did better on the held-out examples, and the DM says which.
    if float(figures[1]) > float(figures[2]):
        assert said.startswith(":white_check_mark: Tuned set *billing*: ")
        assert said.endswith("— `/classify` uses it now.")
        assert tuned is not None and tuned.kind == "adapter" and tuned.examples == 6
    else:
        assert said.startswith("Tuned set *billing*: no better than the plain model (")
        assert tuned is None
    assert jobs(server) == []
    assert server.slack.messages(DM)[-1]["text"] == said


def test_home_shows_how_a_set_is_tuned_and_a_pending_re_tune(bot_server: BotServer) -> None:
    seed(bot_server, "billing")
    seed(bot_server, "shipping")
    assert bot_server.deps is not None
    store = bot_server.deps.store
    encoder = TunedEncoderInput(
        team_id=bot_server.team,
        set_name="billing",
        set_version=store.get_set(bot_server.team, "billing").version,
        base="fake",
        kind="adapter",
        format=1,
        examples=6,
        seconds=1.0,
    )
    # Weights tuned from another embedder than the bot's are not what it classifies with.
    assert store.save_tuned_encoder(encoder, b"weights")
    assert "Tuned on" not in texts_of(open_home(bot_server))
    bot_server.slack.clear_calls()
    served = dataclasses.replace(encoder, base=base_id(bot_server.deps.engine.embeddings.embedder))
    assert store.save_tuned_encoder(served, b"weights")
    store.request_tune(bot_server.team, "shipping", requested_by="U0HUMAN")
    shown = texts_of(open_home(bot_server))
    assert re.search(r"Tuned on 6 examples, <!date\^\d+\^\{date_short_pretty\}\|\d{4}-\d\d-\d\d UTC>", shown)
    assert "A re-tune is pending once edits settle" in shown
    # An edit of the tuned set asks for a re-tune of its own.
    store.remove_example(bot_server.team, "billing", store.list_examples(bot_server.team, "billing")[0].id)
    bot_server.slack.clear_calls()
    shown = texts_of(open_home(bot_server))
    assert "UTC> · a re-tune is pending once edits settle" in shown
    assert shown.count("re-tune is pending") == 2


def open_home(server: BotServer) -> dict[str, Any]:
    event = {
        "type": "app_home_opened",
        "user": "U0HUMAN",
        "channel": "D0HOME",
        "tab": "home",
        "event_ts": "1.2",
    }
    assert server.send_event(event).status == 200
    (published,) = server.slack.wait_for("views.publish")
    server.settle()
    view: dict[str, Any] = published.params["view"]
    return view
