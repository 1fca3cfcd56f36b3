"""`/classify` and its Correct / Wrong label… controls, through the running HTTP app."""

from __future__ import annotations

import re
from typing import Any

from core.store import ExampleInput
from handlers.actions.classify_feedback import WHICH_IS_IT
from handlers.confidence_words import stated
from handlers.rights import ADMINS_ONLY
from tests.support.label_support import BILLING, block, element, seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

#: `/classify` is never sure (no cosine reaches 2) and asks no one else.
UNSURE = {"GEMBOT_MIN_SIMILARITY": "2", "GEMBOT_ESCALATE": "off"}
_ANSWERED = re.compile(r":label: (?:almost certainly|likely|maybe|possibly): \*([^*]+)\* \(\d\d?%\)")


def answered_label(message: dict[str, Any]) -> str | None:
    """The label an answer states with its confidence in words, or None."""
    found = _ANSWERED.search(texts_of(message))
    return found.group(1) if found else None


def classify(server: BotServer, text: str, **fields: Any) -> dict[str, Any]:
    """Send `/classify text` and return the answer as it now stands in the channel."""
    reply = server.send_command("/classify", text, **fields)
    assert reply.status == 200 and reply.body == "", reply.body
    server.slack.wait_for("chat.update")
    server.settle()
    return server.slack.messages(fields.get("channel_id", "C0GENERAL"))[-1]


def press(
    server: BotServer,
    message: dict[str, Any],
    action_id: str,
    *,
    choose: str | None = None,
    user_id: str = "U0OTHER",
) -> None:
    """Click the button (or choose `choose` in the select) of `message`'s actions block, and wait."""
    actions = block(message, "actions")
    control = element(actions, action_id)
    fields: dict[str, Any] = {"block_id": actions["block_id"], "message": message, "user_id": user_id}
    if choose is None:
        fields["value"] = control["value"]
    else:
        (picked,) = [o for o in control["options"] if o["text"]["text"] == choose]
        fields.update(action_type="static_select", selected_option=picked)
    updates = len(server.slack.calls("chat.update"))
    reply = server.send_action(action_id, **fields)
    assert reply.status == 200 and reply.elapsed < 3.0
    server.slack.wait_for("chat.update", count=updates + 1)
    server.settle()


def test_the_answer_replaces_a_working_message_with_label_scores_and_buttons(bot_server: BotServer) -> None:
    seed(bot_server)
    bot_server.slack.latency(1.0, method="chat.update")  # the working state is visible first
    reply = bot_server.send_command("/classify", "I was charged twice on the invoice")
    assert reply.status == 200 and reply.elapsed < 3.0 and reply.body == ""

    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Classifying" in texts_of(working.params)
    assert "charged twice on the invoice" in texts_of(working.params)
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["ts"] == working.response["ts"]
    shown = texts_of(update.params)
    assert bot_server.deps is not None
    (logged,) = bot_server.deps.store.recent_classifications(bot_server.team)
    said, percent = stated(logged.confidence)
    assert update.params["text"] == f"{said}: billing ({percent})"
    assert f":label: {said}: *billing* ({percent})" in shown
    assert "Closest labels (cosine similarity): *billing* 0." in shown and "*shipping* 0." in shown

    actions = block(update.params, "actions")
    correct = element(actions, "classify_correct")
    assert correct["text"]["text"] == "Correct" and correct["value"] == "billing"
    relabel = element(actions, "classify_relabel")
    assert relabel["type"] == "static_select" and relabel["placeholder"]["text"] == "Wrong label…"
    assert [o["value"] for o in relabel["options"]] == ["shipping"]
    # The block carries the classification log id, not the text.
    assert actions["block_id"] == f"classify_feedback:{logged.id}"
    assert logged.text == "I was charged twice on the invoice" and logged.label == "billing"
    assert logged.user_id == "U0HUMAN" and logged.source == "slack"


def test_correct_stores_the_text_as_an_example_and_updates_the_message(bot_server: BotServer) -> None:
    seed(bot_server)
    assert bot_server.deps is not None
    store = bot_server.deps.store
    version = store.get_set(bot_server.team, "default").version
    message = classify(bot_server, "a double charge on my invoice")

    press(bot_server, message, "classify_correct")

    added = [
        e
        for e in store.list_examples(bot_server.team, "default")
        if e.text == "a double charge on my invoice"
    ]
    (example,) = added
    assert example.label == "billing" and example.author == "U0OTHER"
    assert (
        example.source_url
        == f"https://standin.slack.com/archives/C0GENERAL/p{message['ts'].replace('.', '')}"
    )
    assert store.get_set(bot_server.team, "default").version == version + 1
    (updated,) = bot_server.slack.messages("C0GENERAL")
    shown = texts_of(updated)
    assert "Added as an example of *billing* by <@U0OTHER>." in shown
    assert all(b["type"] != "actions" for b in updated["blocks"])  # the buttons are gone
    assert "a double charge on my invoice" in shown  # the rest of the answer stays


def test_wrong_label_stores_the_chosen_label_and_the_next_classify_uses_it(bot_server: BotServer) -> None:
    seed(bot_server)
    assert bot_server.deps is not None
    store = bot_server.deps.store
    version = store.get_set(bot_server.team, "default").version
    first = classify(bot_server, "charged twice on my invoice")
    assert answered_label(first) == "billing"

    press(bot_server, first, "classify_relabel", choose="shipping")

    (example,) = [
        e for e in store.list_examples(bot_server.team, "default") if e.text == "charged twice on my invoice"
    ]
    assert example.label == "shipping" and example.author == "U0OTHER" and example.source_url
    assert store.get_set(bot_server.team, "default").version == version + 1
    shown = texts_of(bot_server.slack.messages("C0GENERAL")[0])
    assert "Added as an example of *shipping* by <@U0OTHER>." in shown

    classify(bot_server, "charged twice on my invoice")
    before, after = sorted(store.recent_classifications(bot_server.team), key=lambda r: r.id)
    # Retrained on the new version: the text is now one of shipping's own examples.
    assert after.scores["shipping"] > before.scores["shipping"] + 0.1


def test_the_set_learns_a_text_it_was_unsure_about(bot_server: BotServer) -> None:
    # Examples that resemble each other, so the set's own calibration knows what unlike them is.
    seed(
        bot_server,
        labels={
            "billing": ["invoice charge", "invoice charge refund"],
            "shipping": ["parcel delivery", "parcel delivery late"],
        },
    )
    unsure = classify(bot_server, "sunny weather today")
    shown = texts_of(unsure)
    assert "*No confident label*: it is unlike this set's examples" in shown and "Nearest label: *" in shown
    assert unsure["text"].startswith("No confident label (closest: ")
    actions = block(unsure, "actions")
    nearest = element(actions, "classify_pick_1")["value"]
    assert element(actions, "classify_pick_1")["text"]["text"] == nearest
    other = "shipping" if nearest == "billing" else "billing"
    assert element(actions, "classify_pick_2")["value"] == other

    press(bot_server, unsure, "classify_pick_2")
    again = classify(bot_server, "sunny weather today")
    assert answered_label(again) == other


def nearest_of(message: dict[str, Any]) -> str:
    """The label a "not sure" answer names as nearest."""
    found = re.search(r"Nearest label: \*([^*]+)\*\.", texts_of(message))
    assert found, texts_of(message)
    return found.group(1)


FOUR_LABELS = {
    "billing": ["I was charged twice on my invoice", "refund the payment taken from my card"],
    "shipping": ["where is my package delivery", "the courier lost my package"],
    "account": ["reset the password of my account", "I cannot log in to my account"],
    "praise": ["great work on the new release", "love the new dashboard"],
}


def test_not_sure_offers_the_nearest_labels_as_buttons(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=UNSURE)
    seed(server, labels=FOUR_LABELS)
    message = classify(server, "the invoice on my card")
    assert message["text"].startswith("No confident label (closest: ")
    assert server.deps is not None
    (logged,) = server.deps.store.recent_classifications(server.team)
    assert logged.label is None

    ask, actions = [b for b in message["blocks"] if b.get("block_id", "").startswith("classify_")]
    assert ask == {
        "type": "context",
        "block_id": f"classify_ask:{logged.id}",
        "elements": [{"type": "mrkdwn", "text": WHICH_IS_IT}],
    }
    assert actions["block_id"] == f"classify_feedback:{logged.id}"
    best = nearest_of(message)
    # The nearest label first, then the others by their cosine, as the log has them.
    order = [best, *(label for label in logged.scores if label != best)]
    *buttons, picker = actions["elements"]
    assert [(b["type"], b["action_id"], b["text"]["text"], b["value"]) for b in buttons] == [
        ("button", f"classify_pick_{rank}", label, label) for rank, label in enumerate(order[:3], 1)
    ]
    assert (picker["type"], picker["action_id"]) == ("static_select", "classify_relabel")
    assert picker["placeholder"]["text"] == "Another label…"
    assert [o["value"] for o in picker["options"]] == order[3:]
    assert not any(e["action_id"] == "classify_correct" for e in actions["elements"])


def test_pressing_a_nearest_label_adds_the_example_and_updates_the_answer(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env=UNSURE)
    seed(server, labels=FOUR_LABELS)
    assert server.deps is not None
    store = server.deps.store
    version = store.get_set(server.team, "default").version
    message = classify(server, "the invoice on my card")
    chosen = element(block(message, "actions"), "classify_pick_2")["value"]

    press(server, message, "classify_pick_2")

    (example,) = [
        e for e in store.list_examples(server.team, "default") if e.text == "the invoice on my card"
    ]
    assert example.label == chosen and example.author == "U0OTHER"
    assert (
        example.source_url
        == f"https://standin.slack.com/archives/C0GENERAL/p{message['ts'].replace('.', '')}"
    )
    assert store.get_set(server.team, "default").version == version + 1
    (updated,) = server.slack.messages("C0GENERAL")
    shown = texts_of(updated)
    assert f"Added as an example of *{chosen}* by <@U0OTHER>." in shown
    # The buttons and the question over them are gone; the rest of the answer stays.
    assert all(b["type"] != "actions" for b in updated["blocks"])
    assert WHICH_IS_IT not in shown
    assert "the invoice on my card" in shown and "*No confident label*" in shown


def test_with_admins_curation_the_nearest_label_buttons_refuse_non_admins(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env={**UNSURE, "GEMBOT_CURATION": "admins", "GEMBOT_ADMINS": "U0BOSS"})
    seed(server, labels=FOUR_LABELS)
    message = classify(server, "the invoice on my card")
    actions = block(message, "actions")
    url = server.slack.response_url()
    server.send_action(
        "classify_pick_1",
        value=element(actions, "classify_pick_1")["value"],
        block_id=actions["block_id"],
        message=message,
        user_id="U0OTHER",
        response_url=url,
    )
    (said,) = server.slack.wait_for_response(url)
    server.settle()
    assert said["text"] == f":no_entry: {ADMINS_ONLY}" and said["response_type"] == "ephemeral"
    assert server.deps is not None
    texts = {e.text for e in server.deps.store.list_examples(server.team, "default")}
    assert "the invoice on my card" not in texts
    assert server.slack.messages("C0GENERAL")[-1]["blocks"] == message["blocks"]  # untouched

    # An admin may: the same button stores the text.
    press(server, message, "classify_pick_1", user_id="U0BOSS")
    labels = {
        e.label
        for e in server.deps.store.list_examples(server.team, "default")
        if e.text == "the invoice on my card"
    }
    assert labels == {element(actions, "classify_pick_1")["value"]}


def test_a_nearest_label_too_long_for_a_value_travels_as_a_hash(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=UNSURE)
    long_name = "charges on the invoice that the customer does not recognise " * 3
    assert len(long_name) > 150
    seed(server, labels={long_name: FOUR_LABELS["billing"], "shipping": FOUR_LABELS["shipping"]})
    message = classify(server, "the invoice on my card")
    actions = block(message, "actions")
    (button,) = [e for e in actions["elements"] if e["text"]["text"].startswith("charges on the invoice")]
    assert button["value"].startswith("sha:") and len(button["value"]) <= 150
    assert len(button["text"]["text"]) <= 75

    press(server, message, button["action_id"])
    assert server.deps is not None
    (example,) = [
        e
        for e in server.deps.store.list_examples(server.team, "default")
        if e.text == "the invoice on my card"
    ]
    assert example.label == long_name.strip()


def test_not_sure_label_names_cannot_ping_anyone(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env=UNSURE)
    seed(server, labels={"<!channel>": ["great work today"], "@here": ["an awful day today"]})
    message = classify(server, "what a day")
    press(server, message, "classify_pick_1")
    (updated,) = server.slack.messages("C0GENERAL")
    mrkdwn = (
        "\n".join(
            element["text"]
            for b in updated["blocks"]
            for element in ([b["text"]] if b["type"] == "section" else b.get("elements") or [])
            if isinstance(element, dict) and element.get("type") == "mrkdwn"
        )
        .replace("<@U0HUMAN>", "")
        .replace("<@U0OTHER>", "")
    )
    assert "Added as an example of *" in mrkdwn
    assert "<!" not in mrkdwn and "<@" not in mrkdwn and "@here" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn


def test_set_name_picks_the_set(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["great day so happy"], "sad": ["awful day so sad"]})
    message = classify(bot_server, "set:mood what a great happy day")
    shown = texts_of(message)
    assert "with set *mood*" in shown and answered_label(message) == "happy"
    assert bot_server.deps is not None
    (logged,) = bot_server.deps.store.recent_classifications(bot_server.team)
    assert logged.set_name == "mood" and logged.text == "what a great happy day"

    press(bot_server, message, "classify_correct")
    texts = {e.text for e in bot_server.deps.store.list_examples(bot_server.team, "mood", label="happy")}
    assert "what a great happy day" in texts


def test_a_long_text_is_classified_and_stored_whole(make_bot_server: MakeBotServer) -> None:
    # Past Block Kit's limits, and past the default GEMBOT_MAX_TEXT_CHARS (4,000), raised here.
    bot_server = make_bot_server(env={"GEMBOT_MAX_TEXT_CHARS": "10000"})
    seed(bot_server)
    long_text = " ".join(["my invoice shows a wrong charge"] * 200)
    assert len(long_text) > 6_000
    message = classify(bot_server, long_text)
    actions = block(message, "actions")
    assert all(len(e.get("value", "")) <= 2000 for e in actions["elements"])
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")
    press(bot_server, message, "classify_correct")
    assert bot_server.deps is not None
    assert long_text in {e.text for e in bot_server.deps.store.list_examples(bot_server.team, "default")}


def test_the_text_cannot_ping_anyone(bot_server: BotServer) -> None:
    seed(bot_server)
    message = classify(bot_server, "<!channel> &lt;@U999&gt; charged twice on my invoice @here")
    shown = texts_of(message).replace("<@U0HUMAN>", "")
    assert "<!" not in shown and "<@" not in shown and "@here" not in shown
    assert "@\u200bchannel" in shown and "&lt;@U999&gt;" in shown


def test_empty_text_gets_the_usage_line(bot_server: BotServer) -> None:
    for typed in ("", "   ", "set:default"):
        reply = bot_server.send_command("/classify", typed)
        assert reply.status == 200
        assert reply.json()["response_type"] == "ephemeral"
        assert reply.json()["text"].startswith("Usage: `/classify TEXT`")
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_no_label_set_yet_is_explained(bot_server: BotServer) -> None:
    reply = bot_server.send_command("/classify", "anything at all")
    assert reply.json() == {
        "text": "No label set yet — add examples with `/label add LABEL: TEXT`.",
        "response_type": "ephemeral",
    }
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_an_unknown_set_names_the_sets_there_are(bot_server: BotServer) -> None:
    seed(bot_server, "intents")
    reply = bot_server.send_command("/classify", "charged twice")
    said = reply.json()["text"]
    assert reply.json()["response_type"] == "ephemeral"
    assert "There is no label set *default*" in said and "*intents*" in said and "set:NAME" in said
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_a_set_with_one_label_says_so(bot_server: BotServer) -> None:
    seed(bot_server, "solo", labels={"billing": BILLING})
    reply = bot_server.send_command("/classify", "set:solo charged twice")
    said = reply.json()["text"]
    assert said.startswith("Label set *solo* needs at least two labels with examples to classify (it has 1)")
    assert "`/label add set:solo LABEL: TEXT`" in said
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_a_forgotten_classification_is_explained(bot_server: BotServer) -> None:
    seed(bot_server)
    message = classify(bot_server, "charged twice on my invoice")
    actions = block(message, "actions")
    url = bot_server.slack.response_url()
    reply = bot_server.send_action(
        "classify_correct",
        value="billing",
        block_id="classify_feedback:999999",
        message=message,
        response_url=url,
    )
    assert reply.status == 200
    (said,) = bot_server.slack.wait_for_response(url)
    assert said["response_type"] == "ephemeral" and "no longer on record" in said["text"]
    assert actions["block_id"] != "classify_feedback:999999"


def test_in_a_channel_the_bot_cannot_write_to_the_answer_is_updated_through_the_response_url(
    bot_server: BotServer,
) -> None:
    seed(bot_server)
    bot_server.slack.add_channel("G0PRIVATE", member=False, private=True)
    reply = bot_server.send_command("/classify", "charged twice on my invoice", channel_id="G0PRIVATE")
    working, answer = bot_server.slack.wait_for_response(reply.sent["response_url"], count=2)
    bot_server.settle()
    assert "Classifying" in working["text"] and answer["replace_original"] is True
    # Slack hands the message back with the action, ts included.
    message = {
        "type": "message",
        "ts": "1700000000.000200",
        "text": answer["text"],
        "blocks": answer["blocks"],
    }
    url = bot_server.slack.response_url()
    actions = block(message, "actions")
    bot_server.send_action(
        "classify_correct",
        value="billing",
        block_id=actions["block_id"],
        message=message,
        channel_id="G0PRIVATE",
        response_url=url,
    )
    (replaced,) = bot_server.slack.wait_for_response(url)
    bot_server.settle()
    assert replaced["replace_original"] is True
    assert "Added as an example of *billing* by <@U0HUMAN>." in texts_of(replaced)
    assert bot_server.deps is not None
    texts = {e.text for e in bot_server.deps.store.list_examples(bot_server.team, "default", label="billing")}
    assert "charged twice on my invoice" in texts


def test_correct_on_postgres_too(make_bot_server: MakeBotServer, database_url: str) -> None:
    server = make_bot_server(database_url=database_url)
    assert server.deps is not None
    server.deps.store.add_examples(
        server.team,
        "default",
        [ExampleInput("billing", t) for t in BILLING] + [ExampleInput("shipping", "parcel delivery late")],
    )
    message = classify(server, "wrong charge on the invoice")
    press(server, message, "classify_correct")
    (example,) = [
        e
        for e in server.deps.store.list_examples(server.team, "default")
        if e.text == "wrong charge on the invoice"
    ]
    assert example.label == "billing" and example.author == "U0OTHER" and example.source_url
