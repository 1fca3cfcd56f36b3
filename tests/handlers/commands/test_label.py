"""`/label` and its subcommands, through the running HTTP app."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.csv_cells import DANGEROUS
from core.labels_io import LabelRow, rows_to_csv
from core.store import ExampleInput
from tests.support.cli_support import on_database
from tests.support.label_support import BILLING, SHIPPING, seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer

PNG = b"\x89PNG\r\n\x1a\n"
CHANNEL = "C0GENERAL"
DM = "D0HUMAN"  # U0HUMAN's DM with the bot, as the stand-in's conversations.open names it
HYPERLINK = '=HYPERLINK("http://evil.invalid/?x","click")'


def label(server: BotServer, typed: str, **fields: Any) -> dict[str, Any]:
    """Send `/label typed` and return the private answer it got through the response_url."""
    reply = server.send_command("/label", typed, **fields)
    assert reply.status == 200 and reply.elapsed < 3.0
    assert reply.body == "", reply.body  # nothing wrong with the input: the answer comes after the ack
    (answer,) = server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    assert answer["response_type"] == "ephemeral"
    return answer


def refused(server: BotServer, typed: str) -> str:
    """Send `/label typed`, expect a private one-liner in the ack and nothing else; return it."""
    reply = server.send_command("/label", typed)
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    server.settle()
    assert server.slack.calls() == []
    return str(reply.json()["text"])


# -- add ------------------------------------------------------------------------------------


def test_add_stores_an_example_with_its_author(bot_server: BotServer) -> None:
    answer = label(bot_server, "add billing: I was charged twice: once on Monday")
    assert answer["text"].startswith(":white_check_mark: Added example #")
    assert "to *billing* in set *default* (the set now has 1 label and 1 example)" in answer["text"]
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert (example.label, example.text, example.author) == (
        "billing",
        "I was charged twice: once on Monday",
        "U0HUMAN",
    )
    assert f"#{example.id}" in answer["text"]

    again = label(bot_server, "add billing:I was charged twice: once on Monday")
    assert again["text"] == "*billing* in set *default* already has that example; nothing changed."


@pytest.mark.parametrize(
    "typed", ["set:intents add refund: money back please", "add set:intents refund: money back please"]
)
def test_add_takes_a_set_before_or_after_the_subcommand(bot_server: BotServer, typed: str) -> None:
    answer = label(bot_server, typed)
    assert "in set *intents*" in answer["text"]
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "intents")
    assert (example.label, example.text) == ("refund", "money back please")


def test_a_multi_line_example_keeps_its_lines(bot_server: BotServer) -> None:
    label(bot_server, "add\nbilling:\nfirst line\nsecond line")
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert (example.label, example.text) == ("billing", "first line\nsecond line")


def test_slack_escapes_are_undone_in_what_is_stored(bot_server: BotServer) -> None:
    label(bot_server, "add terms &amp; conditions: read the T&amp;Cs &lt;now&gt; <https://example.com|here>")
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert (example.label, example.text) == ("terms & conditions", "read the T&Cs <now> here")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("add billing charged twice", "Usage: `/label add LABEL: TEXT`"),
        ("add : charged twice", "The label is missing: Usage: `/label add LABEL: TEXT`"),
        ("add billing:   ", "The text is missing: Usage: `/label add LABEL: TEXT`"),
        ("add " + "x" * 201 + ": text", "The label name is longer than 200 characters."),
        ("set:" + "s" * 101 + " list", "The label set name is longer than 100 characters."),
        ("remove", "Usage: `/label remove ID`"),
        ("remove twelve", "Usage: `/label remove ID`"),
        ("eval fastest", "Usage: `/label eval [auto|centroid|logreg]` — `fastest` is not one."),
        ("export xml", "Usage: `/label export [csv|json]` — `xml` is not one."),
        ("", "Usage of `/label`"),
        ("help", "Usage of `/label`"),
        ("frobnicate all", "Usage of `/label`"),
    ],
)
def test_bad_input_gets_a_private_one_liner_in_the_ack(
    bot_server: BotServer, typed: str, expected: str
) -> None:
    assert refused(bot_server, typed).startswith(expected)


# -- list and remove ------------------------------------------------------------------------


def test_list_shows_ids_labels_and_texts(bot_server: BotServer) -> None:
    seed(bot_server)
    assert bot_server.deps is not None
    records = bot_server.deps.store.list_examples(bot_server.team, "default")
    answer = label(bot_server, "list")
    shown = texts_of(answer)
    assert "8 examples in set *default*:" in shown
    for record in records:
        assert f"`#{record.id}` *{record.label}* — {record.text}" in shown

    only = texts_of(label(bot_server, "list shipping"))
    assert "4 examples in set *default*, label *shipping*:" in only
    assert all(text in only for text in SHIPPING) and not any(text in only for text in BILLING)


def test_list_of_an_unknown_label_or_set_says_so(bot_server: BotServer) -> None:
    assert (
        label(bot_server, "list")["text"] == "No label set yet — add examples with `/label add LABEL: TEXT`."
    )
    seed(bot_server)
    assert label(bot_server, "list refunds")["text"] == ":warning: No label 'refunds' in set 'default'."
    said = label(bot_server, "list set:nope")["text"]
    assert said.startswith("There is no label set *nope* in this workspace; it has *default*.")


def test_a_long_list_goes_to_the_requester_alone_by_dm(bot_server: BotServer) -> None:
    assert bot_server.deps is not None
    texts = [f"example number {i} about invoices and parcels" for i in range(200)]
    bot_server.deps.store.add_examples(
        bot_server.team,
        "default",
        [ExampleInput("billing" if i % 2 else "shipping", t) for i, t in enumerate(texts)],
    )
    answer = label(bot_server, "list")
    shown = texts_of(answer)
    assert "too many to show here" in shown and "in your DM with me, as `default-examples.csv`" in shown
    assert len(answer["blocks"]) <= 50
    slack = bot_server.slack
    (opened,) = slack.calls("conversations.open")
    assert opened.params["users"] == "U0HUMAN"
    (upload,) = slack.uploads()
    assert upload.filename == "default-examples.csv" and upload.channels == [DM]
    assert slack.messages(CHANNEL) == []  # not a line of the set's examples in the channel
    rows = list(csv.DictReader(io.StringIO(upload.text)))
    assert len(rows) == 200 and set(rows[0]) == {"id", "label", "text", "author", "source_url"}
    records = {r.id: r for r in bot_server.deps.store.list_examples(bot_server.team, "default")}
    assert {int(r["id"]): r["text"] for r in rows} == {i: r.text for i, r in records.items()}

    # Asked in that DM itself, the file goes up there, and the answer says so.
    again = label(bot_server, "list", channel_id=DM, channel_name="directmessage")
    assert "The full list is attached here, as `default-examples.csv`." in texts_of(again)
    assert [u.channels for u in slack.uploads()] == [[DM], [DM]]
    # The same DM, as Slack answers a conversations.open of one already open.
    reopened = slack.calls("conversations.open")[1].response
    assert reopened == {"ok": True, "no_op": True, "already_open": True, "channel": {"id": DM}}
    assert slack.messages(CHANNEL) == []


def test_remove_deletes_an_example_by_id(bot_server: BotServer) -> None:
    seed(bot_server)
    # The seeded examples have no author: removing them takes an admin (see test_slack_rights.py).
    bot_server.slack.add_user("U0HUMAN", is_admin=True)
    assert bot_server.deps is not None
    store = bot_server.deps.store
    first = store.list_examples(bot_server.team, "default")[0]
    version = store.get_set(bot_server.team, "default").version
    answer = label(bot_server, f"remove #{first.id}")
    assert answer["text"].startswith(f":wastebasket: Removed example #{first.id} from *{first.label}*")
    assert first.id not in {e.id for e in store.list_examples(bot_server.team, "default")}
    assert store.get_set(bot_server.team, "default").version == version + 1

    gone = label(bot_server, f"remove {first.id}")
    assert gone["text"] == f":warning: No example #{first.id} in set 'default'."


# -- sets -----------------------------------------------------------------------------------


def test_sets_lists_counts_evaluations_and_the_team_id(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"], "meh": ["a day"]})
    assert bot_server.deps is not None
    bot_server.deps.store.record_evaluation(
        bot_server.team,
        "default",
        set_version=2,
        method="centroid",
        strategy="leave-one-out",
        n=8,
        accuracy=0.875,
        coverage=1.0,
    )
    shown = texts_of(label(bot_server, "sets"))
    assert "2 label sets in this workspace:" in shown
    assert "*default* — 2 labels and 8 examples, version 2\nbilling 4 · shipping 4" in shown
    assert "_Last evaluated: 88% accuracy, centroid, leave-one-out" in shown
    assert "*mood* — 3 labels and 3 examples" in shown
    assert "team id is `T0STANDIN`" in shown and "--team T0STANDIN" in shown


def test_sets_of_a_new_workspace(bot_server: BotServer) -> None:
    shown = texts_of(label(bot_server, "sets"))
    assert "No label set yet — add examples with `/label add LABEL: TEXT`." in shown
    assert "--team T0STANDIN" in shown


# -- eval -----------------------------------------------------------------------------------


def test_eval_posts_figures_uploads_the_confusion_matrix_and_records_it(bot_server: BotServer) -> None:
    seed(bot_server)
    reply = bot_server.send_command("/label", "eval")
    assert reply.status == 200 and reply.body == "" and reply.elapsed < 3.0
    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Evaluating the label set" in texts_of(working.params)
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    shown = texts_of(update.params)
    assert bot_server.deps is not None
    recorded = bot_server.deps.store.latest_evaluations(bot_server.team)["default"]
    assert (recorded.n, recorded.strategy, recorded.method) == (8, "leave-one-out", "centroid")
    assert recorded.set_version == bot_server.deps.store.get_set(bot_server.team, "default").version
    assert (
        f"*{recorded.accuracy:.1%} accuracy* for label set `default` over 8 examples "
        "(leave-one-out, method centroid)"
    ) in shown
    assert "```label                    precision  recall     f1     n\n" in shown
    assert re.search(r"\nbilling +[01]\.\d\d +[01]\.\d\d +[01]\.\d\d +4\n", shown)
    assert re.search(r"\nshipping +[01]\.\d\d +[01]\.\d\d +[01]\.\d\d +4```", shown)

    (upload,) = bot_server.slack.uploads()
    assert upload.data.startswith(PNG) and upload.filename == "default-confusion.png"
    assert upload.channels == ["C0GENERAL"]


def test_eval_of_a_set_with_one_label_says_so(bot_server: BotServer) -> None:
    seed(bot_server, labels={"billing": BILLING})
    said = label(bot_server, "eval")["text"]
    assert said.startswith(
        "Label set *default* needs at least two labels with examples to be evaluated (it has 1)"
    )
    assert not bot_server.slack.calls("chat.postMessage") and not bot_server.slack.uploads()


# -- export ---------------------------------------------------------------------------------


def test_export_sends_the_csv_to_the_requester_by_dm(bot_server: BotServer) -> None:
    seed(bot_server)
    answer = label(bot_server, "export")
    assert answer["text"] == "I sent you `default.csv`, the export of set *default*, in your DM with me."
    slack = bot_server.slack
    (upload,) = slack.uploads()
    assert upload.filename == "default.csv" and upload.channels == [DM]
    assert slack.messages(CHANNEL) == []
    assert bot_server.deps is not None
    records = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert upload.text == rows_to_csv(LabelRow(r.label, r.text, r.author, r.source_url) for r in records)
    assert upload.initial_comment is not None and "2 labels and 8 examples" in upload.initial_comment


def test_export_asked_in_the_dm_goes_up_there_without_a_note(bot_server: BotServer) -> None:
    seed(bot_server)
    reply = bot_server.send_command("/label", "export", channel_id=DM, channel_name="directmessage")
    assert reply.status == 200 and reply.body == ""
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    (upload,) = bot_server.slack.uploads()
    assert upload.filename == "default.csv" and upload.channels == [DM]
    assert bot_server.slack.response_posts() == []  # the file is the answer, right there


def test_export_reaches_the_dm_from_a_channel_the_bot_is_not_in(bot_server: BotServer) -> None:
    seed(bot_server)
    bot_server.slack.add_channel("G0PRIVATE", member=False, private=True)
    answer = label(bot_server, "export", channel_id="G0PRIVATE")
    assert answer["text"].startswith("I sent you `default.csv`")
    (upload,) = bot_server.slack.uploads()
    assert upload.channels == [DM]
    assert bot_server.slack.calls("conversations.join") == []


def test_export_without_a_dm_sends_no_file_anywhere(bot_server: BotServer) -> None:
    seed(bot_server)
    bot_server.slack.fail_next("conversations.open", error="missing_scope")
    answer = label(bot_server, "export")
    assert (
        answer["text"] == ":warning: I lack a Slack permission for this: reinstall the app from its manifest."
    )
    assert bot_server.slack.uploads() == [] and bot_server.slack.calls("files.getUploadURLExternal") == []


def test_a_formula_in_an_example_is_neutralised_and_comes_back_exactly(
    bot_server: BotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    label(bot_server, f"add fruit: {HYPERLINK}")
    label(bot_server, "add @risk: '=already quoted")
    label(bot_server, "export")
    (exported,) = bot_server.slack.uploads()
    cells = list(csv.reader(io.StringIO(exported.text, newline="")))
    assert cells[1:] == [
        ["''=already quoted", "'@risk", "U0HUMAN", ""],
        ["'" + HYPERLINK, "fruit", "U0HUMAN", ""],
    ]
    assert not any(cell and cell[0] in DANGEROUS for row in cells for cell in row)
    assert bot_server.deps is not None
    store, team = bot_server.deps.store, bot_server.team
    originals = [(e.label, e.text, e.author) for e in store.list_examples(team, "default")]

    # Back in by `gembot labels import`, on the bot's own database...
    path = tmp_path / exported.filename
    path.write_bytes(exported.data)
    cli = on_database(bot_server.settings.database_url, tmp_path, monkeypatch, capsys)
    assert cli("labels", "import", str(path), "--team", team, "--set", "from-cli").code == 0
    # ...and by a DM with the word `import`.
    file = bot_server.slack.add_file(exported.data, exported.filename, "text/csv")
    event = {"type": "message", "subtype": "file_share", "user": "U0HUMAN", "text": "import set:from-dm"}
    event |= {"ts": "1700003000.000100", "channel": DM, "channel_type": "im", "files": [file]}
    bot_server.send_event(event)
    bot_server.slack.wait_for("chat.update")
    bot_server.settle()
    for copy in ("from-cli", "from-dm"):
        assert [(e.label, e.text, e.author) for e in store.list_examples(team, copy)] == originals
        label(bot_server, f"export set:{copy}")
        assert bot_server.slack.uploads()[-1].data == exported.data


def test_export_as_json(bot_server: BotServer) -> None:
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"]})
    bot_server.send_command("/label", "export set:mood json")
    bot_server.slack.wait_for("files.completeUploadExternal")
    (upload,) = bot_server.slack.uploads()
    assert upload.filename == "mood.json"
    document = json.loads(upload.text)
    assert document["set"] == "mood" and {e["label"] for e in document["examples"]} == {"happy", "sad"}


def test_export_of_a_missing_set(bot_server: BotServer) -> None:
    said = label(bot_server, "export")["text"]
    assert said == "No label set yet — add examples with `/label add LABEL: TEXT`."
    assert not bot_server.slack.uploads()


# -- PostgreSQL -----------------------------------------------------------------------------


def test_add_list_and_eval_on_postgres_too(make_bot_server: MakeBotServer, database_url: str) -> None:
    server = make_bot_server(database_url=database_url)
    for text in BILLING[:2]:
        label(server, f"add billing: {text}")
    for text in SHIPPING[:2]:
        label(server, f"add shipping: {text}")
    shown = texts_of(label(server, "list"))
    assert "4 examples in set *default*:" in shown
    server.send_command("/label", "eval")
    server.slack.wait_for("files.completeUploadExternal")
    server.settle()
    assert server.deps is not None
    assert server.deps.store.latest_evaluations(server.team)["default"].n == 4
