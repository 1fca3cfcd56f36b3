"""The "Add as label example" message shortcut and its modal, through the running HTTP app."""

from __future__ import annotations

import json
from typing import Any

from tests.support.label_support import seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

MESSAGE = {"ts": "1700000000.000100", "user": "U0AUTHOR", "text": "The courier left my parcel in the rain"}
PERMALINK = "https://standin.slack.com/archives/C0GENERAL/p1700000000000100"


def open_modal(server: BotServer, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """Use the shortcut on `message` and return the modal it opened (as the stand-in holds it)."""
    reply = server.send_shortcut("add_label_example", message=message or MESSAGE, trigger_id="1.2.trigger")
    assert reply.status == 200 and reply.elapsed < 3.0 and reply.body == ""
    (opened,) = server.slack.wait_for("views.open")
    assert opened.params["trigger_id"] == "1.2.trigger"
    (view,) = server.slack.views().values()
    return view


def state(view: dict[str, Any], **chosen: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The `state.values` Slack sends for `view` with `set` / `label` picked and `new_set` /
    `new_label` typed (any left out are empty)."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        if element["type"] == "static_select":
            kind = "set" if block["block_id"] == "set_pick" else "label"
            wanted = chosen.get(kind)
            picked = next((o for o in element["options"] if o["value"] == wanted), None)
            if picked is None and kind == "set":
                picked = element.get("initial_option")
            values[block["block_id"]] = {
                element["action_id"]: {"type": "static_select", "selected_option": picked}
            }
        else:
            kind = "new_set" if block["block_id"] == "set_new" else "new_label"
            typed = chosen.get(kind, element.get("initial_value"))
            values[block["block_id"]] = {element["action_id"]: {"type": "plain_text_input", "value": typed}}
    return values


def submit(server: BotServer, view: dict[str, Any], **chosen: str) -> Any:
    reply = server.send_view_submission(
        "add_label_example_modal",
        values=state(view, **chosen),
        private_metadata=view["private_metadata"],
        blocks=view["blocks"],
        view_id=view["id"],
    )
    assert reply.status == 200 and reply.elapsed < 3.0
    return reply.json()


def test_the_shortcut_opens_a_modal_with_the_message_sets_and_labels(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"]})
    view = open_modal(bot_server)
    assert view["type"] == "modal" and view["callback_id"] == "add_label_example_modal"
    assert "The courier left my parcel in the rain" in texts_of(view)
    assert "<@U0AUTHOR> wrote:" in texts_of(view)
    metadata = json.loads(view["private_metadata"])
    assert metadata["text"] == MESSAGE["text"] and metadata["author"] == "U0AUTHOR"
    assert metadata["channel"] == "C0GENERAL" and metadata["ts"] == MESSAGE["ts"]
    blocks = {b.get("block_id", "").split(":")[0]: b for b in view["blocks"]}
    sets = blocks["set_pick"]
    assert sets["dispatch_action"] is True
    assert [o["value"] for o in sets["element"]["options"]] == ["default", "mood"]
    assert sets["element"]["initial_option"]["value"] == "default"
    assert [o["value"] for o in blocks["label_pick"]["element"]["options"]] == ["billing", "shipping"]
    assert {"set_new", "label_new"} <= set(blocks)


def test_submitting_stores_the_example_with_author_and_permalink(bot_server: BotServer) -> None:
    seed(bot_server)
    view = open_modal(bot_server)
    assert submit(bot_server, view, set="default", label="shipping") is None  # closed, no errors
    (confirmation,) = bot_server.slack.wait_for_response()
    bot_server.settle()
    assert confirmation["response_type"] == "ephemeral"
    assert confirmation["text"].startswith(":white_check_mark: Added the message as example #")
    assert "of *shipping* in label set *default* (9 examples in the set now)" in confirmation["text"]
    assert bot_server.deps is not None
    (example,) = [
        e
        for e in bot_server.deps.store.list_examples(bot_server.team, "default")
        if e.text == MESSAGE["text"]
    ]
    assert (example.label, example.author, example.source_url) == ("shipping", "U0AUTHOR", PERMALINK)


def test_a_new_set_and_label_can_be_named(bot_server: BotServer) -> None:
    view = open_modal(bot_server)  # a new workspace: no sets to pick from
    blocks = [b.get("block_id") for b in view["blocks"] if b["type"] == "input"]
    assert blocks == ["set_new", "label_new"]
    assert view["blocks"][1]["element"]["initial_value"] == "default"
    assert submit(bot_server, view, new_set="weather", new_label="complaint") is None
    bot_server.slack.wait_for_response()
    bot_server.settle()
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "weather")
    assert (example.label, example.text) == ("complaint", MESSAGE["text"])


def test_an_empty_new_label_is_an_error_in_the_modal(bot_server: BotServer) -> None:
    seed(bot_server)
    view = open_modal(bot_server)
    answer = submit(bot_server, view, set="default", new_label="   ")
    assert answer == {
        "response_action": "errors",
        "errors": {"label_new": "Pick a label above or name a new one."},
    }
    empty = open_modal_again(bot_server)
    answer = submit(bot_server, empty, new_set="", new_label="")
    assert answer["errors"] == {
        "set_new": "Pick a label set above or name a new one.",
        "label_new": "Name the label.",
    }
    too_long = submit(bot_server, empty, new_set="s", new_label="x" * 201)
    assert too_long["errors"] == {"label_new": "The label name is longer than 200 characters."}
    bot_server.settle()
    assert bot_server.deps is not None
    assert [s.name for s in bot_server.deps.store.list_sets(bot_server.team)] == ["default"]
    assert not bot_server.slack.response_posts()


def open_modal_again(server: BotServer) -> dict[str, Any]:
    """A modal for a workspace without sets (as the shortcut builds it), without going through Slack."""
    from handlers.views.add_example import Origin, build_view

    origin = Origin(MESSAGE["text"], "U0AUTHOR", "C0GENERAL", MESSAGE["ts"], server.slack.response_url())
    return {**build_view(origin, []), "id": "V0EMPTY"}


def test_choosing_another_set_refreshes_the_labels(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"]})
    view = open_modal(bot_server)
    (mood,) = [o for o in view["blocks"][1]["element"]["options"] if o["value"] == "mood"]
    reply = bot_server.send_action(
        "add_example_set",
        block_id="set_pick",
        action_type="static_select",
        selected_option=mood,
        view=view,
        channel_id=None,
        response_url=None,
    )
    assert reply.status == 200
    (update,) = bot_server.slack.wait_for("views.update")
    bot_server.settle()
    assert update.params["view_id"] == view["id"] and update.params["hash"] == view["hash"]
    refreshed = bot_server.slack.views()[view["id"]]
    (labels,) = [b for b in refreshed["blocks"] if b.get("block_id", "").startswith("label_pick")]
    assert [o["value"] for o in labels["element"]["options"]] == ["happy", "sad"]
    assert refreshed["private_metadata"] == view["private_metadata"]
    assert submit(bot_server, refreshed, set="mood", label="sad") is None
    bot_server.slack.wait_for_response()
    bot_server.settle()
    assert bot_server.deps is not None
    sad = bot_server.deps.store.list_examples(bot_server.team, "mood", label="sad")
    assert MESSAGE["text"] in {e.text for e in sad}


def test_a_long_message_is_cut_to_fit_the_metadata(bot_server: BotServer) -> None:
    seed(bot_server)
    # 3,770 characters: within GEMBOT_MAX_TEXT_CHARS (4,000), but not within the metadata's 3,000 bytes.
    text = "Le colis est arrivé trempé — " * 130
    assert len(text) < bot_server.settings.max_text_chars
    view = open_modal(bot_server, {**MESSAGE, "text": text})
    assert len(view["private_metadata"].encode()) <= 3000
    kept = json.loads(view["private_metadata"])["text"]
    assert 2000 < len(kept) < len(text) and text.startswith(kept)
    assert f"its first {len(kept):,} characters will be kept" in texts_of(view)
    submit(bot_server, view, set="default", label="shipping")
    bot_server.slack.wait_for_response()
    bot_server.settle()
    assert bot_server.deps is not None
    assert kept in {e.text for e in bot_server.deps.store.list_examples(bot_server.team, "default")}


def test_a_message_without_text_is_refused_privately(bot_server: BotServer) -> None:
    url = bot_server.slack.response_url()
    reply = bot_server.send_shortcut("add_label_example", message={**MESSAGE, "text": ""}, response_url=url)
    assert reply.status == 200
    (said,) = bot_server.slack.wait_for_response(url)
    bot_server.settle()
    assert said["text"] == "That message has no text to add as a label example."
    assert not bot_server.slack.calls("views.open")


def test_the_confirmation_falls_back_to_a_dm(bot_server: BotServer) -> None:
    seed(bot_server)
    view = open_modal(bot_server)
    bot_server.slack.fail_next("response_url", status=404)
    bot_server.slack.fail_next("chat.postEphemeral", error="channel_not_found")
    submit(bot_server, view, set="default", label="billing")
    (dm,) = bot_server.slack.wait_for("chat.postMessage")
    bot_server.settle()
    assert dm.params["channel"] == "U0HUMAN"
    assert "Added the message as example #" in dm.params["text"]


def test_submitting_on_postgres_too(make_bot_server: MakeBotServer, database_url: str) -> None:
    server = make_bot_server(database_url=database_url)
    seed(server)
    view = open_modal(server)
    submit(server, view, set="default", new_label="weather damage")
    server.slack.wait_for_response()
    server.settle()
    assert server.deps is not None
    (example,) = server.deps.store.list_examples(server.team, "default", label="weather damage")
    assert (example.text, example.author, example.source_url) == (MESSAGE["text"], "U0AUTHOR", PERMALINK)


def test_a_message_over_the_text_bound_is_refused_privately(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_TEXT_CHARS": "100"})
    seed(server)
    url = server.slack.response_url()
    # 101 characters once Slack's escapes are undone: `&amp;` is the one character it stands for.
    message = {**MESSAGE, "text": "&amp;" + "x" * 100}
    reply = server.send_shortcut("add_label_example", message=message, response_url=url)
    assert reply.status == 200 and reply.elapsed < 3.0 and reply.body == ""
    (said,) = server.slack.wait_for_response(url)
    server.settle()
    assert said["text"] == (
        "That message is 101 characters long, and a label example may have at most 100: add the part "
        "that matters with `/label add LABEL: TEXT` (whoever runs me can raise GEMBOT_MAX_TEXT_CHARS)."
    )
    assert not server.slack.calls("views.open")
    # At the bound exactly, the modal opens.
    view = open_modal(server, {**MESSAGE, "text": "&amp;" + "x" * 99})
    assert json.loads(view["private_metadata"])["text"] == "&" + "x" * 99


def test_a_submission_over_the_text_bound_stores_nothing(make_bot_server: MakeBotServer) -> None:
    # The bound was lowered (a restart with a new setting) while the modal was open.
    server = make_bot_server(env={"GEMBOT_MAX_TEXT_CHARS": "100"})
    seed(server)
    assert server.deps is not None
    from handlers.views.add_example import Origin, build_view

    origin = Origin("y" * 150, "U0AUTHOR", "C0GENERAL", MESSAGE["ts"], server.slack.response_url())
    view = {**build_view(origin, server.deps.store.list_sets(server.team)), "id": "V0LONG"}
    assert submit(server, view, set="default", label="shipping") is None  # the modal closes
    (said,) = server.slack.wait_for_response()
    server.settle()
    assert said["text"] == (
        ":warning: That message is 150 characters long, and a label example may have at most 100: add "
        "the part that matters with `/label add LABEL: TEXT` (whoever runs me can raise "
        "GEMBOT_MAX_TEXT_CHARS)."
    )
    assert "y" * 150 not in {e.text for e in server.deps.store.list_examples(server.team, "default")}
    assert [c.action for c in server.deps.store.label_history(server.team)] == ["import"]
