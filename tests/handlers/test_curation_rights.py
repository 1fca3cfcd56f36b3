"""Who may curate (GEMBOT_CURATION, GEMBOT_ADMINS, workspace admins) and the change log in
`/label history`, through the running HTTP app."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from core.store import ExampleInput
from handlers.rights import ADMINS_ONLY, AUTHOR_OR_ADMIN
from tests.support.label_support import block, element, seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

ADMINS = {"GEMBOT_CURATION": "admins", "GEMBOT_ADMINS": "U0BOSS"}
REFUSED = f":no_entry: {ADMINS_ONLY}"
_ts = itertools.count(1)


def label(server: BotServer, typed: str, *, user: str = "U0HUMAN") -> str:
    """Send `/label typed` as `user`; return the private answer's text."""
    reply = server.send_command("/label", typed, user_id=user)
    assert reply.status == 200 and reply.body == "", reply.body
    (answer,) = server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"]) + "\n" + texts_of(answer)


def examples(server: BotServer, set_name: str = "default") -> list[tuple[str, str]]:
    assert server.deps is not None
    if not any(s.name == set_name for s in server.deps.store.list_sets(server.team)):
        return []
    return [(e.label, e.text) for e in server.deps.store.list_examples(server.team, set_name)]


# -- GEMBOT_CURATION=admins ---------------------------------------------------------------------


def test_with_admins_curation_a_non_admin_is_refused_and_nothing_is_stored(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env=ADMINS)
    assert label(server, "add billing: charged twice").startswith(REFUSED)
    assert examples(server) == []
    assert server.deps is not None and server.deps.store.label_history(server.team) == []
    (info,) = server.slack.calls("users.info")  # a workspace admin would have been allowed
    assert info.params["user"] == "U0HUMAN"


def test_a_user_in_gembot_admins_may_curate_without_asking_slack(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ADMINS)
    assert ":white_check_mark: Added example #" in label(server, "add billing: charged twice", user="U0BOSS")
    assert examples(server) == [("billing", "charged twice")]
    assert server.slack.calls("users.info") == []


@pytest.mark.parametrize("role", ["is_admin", "is_owner", "is_primary_owner"])
def test_workspace_admins_and_owners_may_curate(make_bot_server: MakeBotServer, role: str) -> None:
    server = make_bot_server(env=ADMINS)
    flags: dict[str, Any] = {role: True}
    server.slack.add_user("U0OWNER", **flags)
    assert ":white_check_mark:" in label(server, "add billing: charged twice", user="U0OWNER")
    assert ":white_check_mark:" in label(server, "add shipping: late parcel", user="U0OWNER")
    assert len(examples(server)) == 2
    assert len(server.slack.calls("users.info")) == 1  # the answer is remembered for a while


def test_with_admins_curation_the_feedback_buttons_refuse_non_admins(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ADMINS)
    seed(server)
    reply = server.send_command("/classify", "a double charge on my invoice")
    assert reply.body == ""
    server.slack.wait_for("chat.update")
    server.settle()
    message = server.slack.messages("C0GENERAL")[-1]
    actions = block(message, "actions")
    url = server.slack.response_url()
    server.send_action(
        "classify_correct",
        value=element(actions, "classify_correct")["value"],
        block_id=actions["block_id"],
        message=message,
        user_id="U0OTHER",
        response_url=url,
    )
    (said,) = server.slack.wait_for_response(url)
    server.settle()
    assert said["text"] == REFUSED and said["response_type"] == "ephemeral"
    assert ("billing", "a double charge on my invoice") not in examples(server)
    assert any(b["type"] == "actions" for b in server.slack.messages("C0GENERAL")[-1]["blocks"])


def test_with_admins_curation_the_shortcut_opens_no_modal_for_non_admins(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env=ADMINS)
    url = server.slack.response_url()
    message = {"ts": "1700000000.000100", "user": "U0AUTHOR", "text": "The courier lost my parcel"}
    reply = server.send_shortcut("add_label_example", message=message, response_url=url, user_id="U0HUMAN")
    assert reply.status == 200
    (said,) = server.slack.wait_for_response(url)
    server.settle()
    assert said["text"] == REFUSED
    assert server.slack.calls("views.open") == []


def test_with_admins_curation_a_dm_import_is_refused(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ADMINS)
    file = server.slack.add_file(b"text,label\nlate parcel,shipping\n", "labels.csv", "text/csv")
    ts = f"1700004{next(_ts):03d}.000100"
    event = {
        "type": "message",
        "subtype": "file_share",
        "user": "U0HUMAN",
        "text": "import",
        "ts": ts,
        "event_ts": ts,
        "channel": "D0HUMAN",
        "channel_type": "im",
        "files": [file],
        "upload": True,
    }
    assert server.send_event(event).status == 200
    (post,) = server.slack.wait_for("chat.postMessage")
    server.settle()
    assert post.params["text"] == REFUSED and post.params["thread_ts"] == ts
    assert server.slack.calls("download") == []
    assert examples(server) == []


# -- removing -------------------------------------------------------------------------------------


def test_an_example_is_removed_by_its_author_or_an_admin_only(bot_server: BotServer) -> None:
    said = label(bot_server, "add billing: charged twice", user="U0ANA")
    assert ":white_check_mark:" in said
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")

    assert label(bot_server, f"remove {example.id}", user="U0BO").startswith(f":no_entry: {AUTHOR_OR_ADMIN}")
    assert examples(bot_server) == [("billing", "charged twice")]
    assert ":wastebasket: Removed example" in label(bot_server, f"remove {example.id}", user="U0ANA")
    assert examples(bot_server) == []

    # Someone else's example goes when an admin removes it.
    label(bot_server, "add billing: charged again", user="U0ANA")
    (other,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    bot_server.slack.add_user("U0ADMIN", is_admin=True)
    assert ":wastebasket: Removed example" in label(bot_server, f"remove {other.id}", user="U0ADMIN")


def test_the_author_of_a_message_added_by_someone_else_may_remove_it(bot_server: BotServer) -> None:
    assert bot_server.deps is not None
    (added,) = bot_server.deps.store.add_examples(
        bot_server.team,
        "default",
        [ExampleInput("billing", "my words", author="U0WRITER")],
        actor="U0CURATOR",
    ).ids
    assert ":wastebasket:" in label(bot_server, f"remove {added}", user="U0WRITER")


def test_with_admins_curation_only_admins_remove(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=ADMINS)
    assert server.deps is not None
    (added,) = server.deps.store.add_examples(
        server.team, "default", [ExampleInput("billing", "charged twice", author="U0HUMAN")], actor="U0HUMAN"
    ).ids
    assert label(server, f"remove {added}").startswith(REFUSED)
    assert ":wastebasket:" in label(server, f"remove {added}", user="U0BOSS")


# -- /label history -------------------------------------------------------------------------------


def test_history_shows_who_changed_what_and_when(bot_server: BotServer) -> None:
    assert bot_server.deps is not None
    store = bot_server.deps.store
    store.add_examples(bot_server.team, "intents", [ExampleInput("refund", "money back")], actor="cli:ops")
    label(bot_server, "add billing: charged twice", user="U0ANA")
    label(bot_server, "add shipping: late <https://example.com|parcel>", user="U0BO")
    (billing,) = [e for e in store.list_examples(bot_server.team, "default") if e.label == "billing"]
    label(bot_server, f"remove {billing.id}", user="U0ANA")

    shown = label(bot_server, "history")
    assert "The latest 4 changes to the label sets, newest first:" in shown
    lines = [line for line in shown.splitlines() if line.startswith("<!date^")]
    assert len(lines) == 4
    assert lines[0].endswith(
        f"<@U0ANA> removed #{billing.id} from *billing* in set *default*: “charged twice”"
    )
    assert "<@U0BO> added #" in lines[1] and "to *shipping* in set *default*: “late parcel”" in lines[1]
    assert f"<@U0ANA> added #{billing.id} to *billing* in set *default*" in lines[2]
    assert "the command line (ops) added #" in lines[3] and "in set *intents*" in lines[3]
    assert all(" UTC> · " in line for line in lines)  # the fallback of Slack's local-time date

    only = label(bot_server, "history set:default 1")
    assert "The latest 1 change to label set *default*" in only
    assert "removed #" in only and "added #" not in only
    assert "No changes to label set *nope* on record yet." in label(bot_server, "history set:nope")
    refused = bot_server.send_command("/label", "history 1000").json()["text"]
    assert refused.startswith("Usage: `/label history [N]`")
