"""CSV files sent to the bot by DM: `import` into a label set, `classify` a whole table.

Through the running HTTP app: the file is downloaded from the Slack stand-in with the bot token,
the answer lands in the DM message's thread, results go up with files_upload_v2.
"""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

from core.store import ExampleInput
from handlers import bulk
from tests.support.slack_fixtures import BotServer, MakeBotServer

DM = "D0HUMAN"
_clock = itertools.count(1)

LABELS_CSV = (
    "text,label,author\n"
    "my card was charged twice,billing,ana\n"
    '"refund my payment, please",billing,\n'
    "where is my parcel,shipping,bo\n"
    "the delivery is late,shipping,\n"
)
EXAMPLES = [
    ExampleInput("billing", "my card was charged twice"),
    ExampleInput("billing", "refund my payment please"),
    ExampleInput("billing", "wrong charge on my card invoice"),
    ExampleInput("shipping", "my parcel has not arrived"),
    ExampleInput("shipping", "where is my delivery parcel"),
    ExampleInput("shipping", "package tracking shows late delivery"),
]


def send_csv(
    server: BotServer, content: str | bytes, message: str, *, name: str = "data.csv"
) -> dict[str, Any]:
    """DM the bot a CSV file with `message`; returns the event sent."""
    data = content.encode() if isinstance(content, str) else content
    file = server.slack.add_file(data, name, "text/csv")
    ts = f"1700001{next(_clock):03d}.000200"
    event = {
        "type": "message",
        "subtype": "file_share",
        "user": "U0HUMAN",
        "text": message,
        "ts": ts,
        "event_ts": ts,
        "channel": DM,
        "channel_type": "im",
        "files": [file],
        "upload": True,
    }
    assert server.send_event(event).status == 200
    return event


def texts_of(params: dict[str, Any]) -> str:
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements") or []:
            found.append(element.get("text", ""))
    return " ".join(found)


def seed(server: BotServer, set_name: str = "default") -> None:
    assert server.deps is not None
    server.deps.store.add_examples(server.team, set_name, EXAMPLES)


# -- import ----------------------------------------------------------------------------------------


def test_import_adds_the_rows_to_the_named_set(make_bot_server: MakeBotServer, database_url: str) -> None:
    server = make_bot_server(database_url=database_url)
    event = send_csv(server, LABELS_CSV, "please IMPORT set:support")
    (update,) = server.slack.wait_for("chat.update")
    (working,) = server.slack.calls("chat.postMessage")
    assert working.params["thread_ts"] == event["ts"] and working.params["channel"] == DM
    assert "Importing data.csv into set *support*" in texts_of(working.params)
    assert update.params["ts"] == working.response["ts"]
    assert update.params["text"] == "Imported 4 examples into 2 labels of set *support*."
    (download,) = server.slack.calls("download")
    assert download.token == server.slack.bot_token
    assert server.deps is not None
    examples = server.deps.store.list_examples(server.team, "support")
    assert [(e.label, e.text, e.author) for e in examples] == [
        ("billing", "my card was charged twice", "ana"),
        ("billing", "refund my payment, please", None),
        ("shipping", "where is my parcel", "bo"),
        ("shipping", "the delivery is late", None),
    ]

    send_csv(server, LABELS_CSV, "import set:support")  # the same file again
    again = server.slack.wait_for("chat.update", count=2)[1]
    assert (
        again.params["text"] == "Imported 0 examples into 2 labels of set *support* (4 were already there)."
    )
    assert server.gemini is not None and server.gemini.requests() == []


def test_import_without_a_set_goes_to_the_default_one(bot_server: BotServer) -> None:
    send_csv(bot_server, LABELS_CSV, "import")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert "of set *default*" in update.params["text"]
    assert bot_server.deps is not None
    assert bot_server.deps.store.get_set(bot_server.team, "default").label_counts == {
        "billing": 2,
        "shipping": 2,
    }


def test_a_bad_file_imports_nothing_and_says_why(bot_server: BotServer) -> None:
    bad = LABELS_CSV + "a row without a label,\n"
    send_csv(bot_server, bad, "import", name="labels.csv")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["text"] == ":warning: Row 6 has no label."
    send_csv(bot_server, "words,tags\nhello,greeting\n", "import", name="wrong.csv")
    second = bot_server.slack.wait_for("chat.update", count=2)[1]
    assert "wrong.csv needs 'text' and 'label' columns; it has 'words', 'tags'" in second.params["text"]
    assert bot_server.deps is not None
    assert bot_server.deps.store.list_sets(bot_server.team) == []


def test_an_import_with_texts_over_the_bound_imports_nothing_and_names_the_rows(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env={"GEMBOT_MAX_TEXT_CHARS": "100"})
    assert server.deps is not None
    server.deps.store.add_examples(server.team, "support", [ExampleInput("billing", "already here")])
    long = "x" * 101
    bad = LABELS_CSV + f"{long},billing\n" + "a fine row,shipping\n" + f'"{"y" * 60}\n{"y" * 60}",shipping\n'
    send_csv(server, bad, "import set:support", name="labels.csv")
    (update,) = server.slack.wait_for("chat.update")
    server.settle()
    assert update.params["text"] == (
        ":warning: labels.csv has 2 texts longer than 100 characters in rows 6 and 8, so I imported "
        "nothing: shorten them (whoever runs me can raise GEMBOT_MAX_TEXT_CHARS)."
    )
    # Not one row of the file went in: the set is as it was, and so is its change log.
    assert [e.text for e in server.deps.store.list_examples(server.team, "support")] == ["already here"]
    assert [c.action for c in server.deps.store.label_history(server.team)] == ["add"]
    # The same file within the bound goes in whole.
    fixed = LABELS_CSV + "x" * 100 + ",billing\n"
    send_csv(server, fixed, "import set:support", name="labels.csv")
    again = server.slack.wait_for("chat.update", count=2)[1]
    assert again.params["text"] == "Imported 5 examples into 2 labels of set *support*."


def test_an_import_over_the_row_cap_imports_nothing(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_CSV_ROWS": "3"})
    send_csv(server, LABELS_CSV, "import set:support")
    (update,) = server.slack.wait_for("chat.update")
    server.settle()
    assert update.params["text"] == (
        ":warning: data.csv has 4 examples; I import at most 3 at a time (GEMBOT_MAX_CSV_ROWS), so I "
        "imported nothing: split it into smaller files."
    )
    assert server.deps is not None
    assert server.deps.store.list_sets(server.team) == []
    assert server.deps.store.label_history(server.team) == []
    # At the cap, the file goes in whole.
    send_csv(server, LABELS_CSV.rsplit("\n", 2)[0] + "\n", "import set:support")
    again = server.slack.wait_for("chat.update", count=2)[1]
    assert again.params["text"] == "Imported 3 examples into 2 labels of set *support*."


def test_imported_provenance_is_kept_as_the_importers_word_not_slacks(bot_server: BotServer) -> None:
    claimed = (
        "text,label,author,source_url\n"
        "my card was charged twice,billing,U0BOSS,https://evil.invalid/archives/C0GENERAL/p1\n"
        "where is my parcel,shipping,<@U0BOSS>,<https://evil.invalid|the CEO said so>\n"
    )
    send_csv(bot_server, claimed, "import")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["text"] == "Imported 2 examples into 2 labels of set *default*."
    assert bot_server.deps is not None
    store = bot_server.deps.store
    # Recorded as given...
    assert [(e.author, e.source_url) for e in store.list_examples(bot_server.team, "default")] == [
        ("U0BOSS", "https://evil.invalid/archives/C0GENERAL/p1"),
        ("<@U0BOSS>", "<https://evil.invalid|the CEO said so>"),
    ]
    # ...with the importer, whom Slack does vouch for, named in the change log.
    (change,) = store.label_history(bot_server.team)
    assert (change.action, change.actor, change.count) == ("import", "U0HUMAN", 2)

    # Neither the listing nor the history shows a claim as Slack's: no mention, no link.
    shown = []
    for typed in ("list", "history"):
        reply = bot_server.send_command("/label", typed, channel_id="C0GENERAL")
        (answer,) = bot_server.slack.wait_for_response(reply.sent["response_url"])
        shown.append(texts_of(answer))
    listing, history = shown
    assert "my card was charged twice" in listing and "where is my parcel" in listing
    assert "<@U0HUMAN> imported 2 examples" in history
    for said in shown:
        assert "U0BOSS" not in said and "evil.invalid" not in said and "<http" not in said


def test_a_csv_without_a_word_gets_the_choices(bot_server: BotServer) -> None:
    send_csv(bot_server, LABELS_CSV, "here you go")
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    assert "`import`" in post.params["text"] and "`classify`" in post.params["text"]
    send_csv(bot_server, LABELS_CSV, "import or classify?")
    second = bot_server.slack.wait_for("chat.postMessage", count=2)[1]
    assert "Should I `import` or `classify` data.csv?" in second.params["text"]
    bot_server.settle()
    assert not bot_server.slack.calls("download")


def test_the_word_alone_asks_for_the_file(bot_server: BotServer) -> None:
    bot_server.send_event(
        {"type": "message", "user": "U0HUMAN", "text": "classify set:support", "ts": "1700002000.000100"}
        | {"channel": DM, "channel_type": "im"}
    )
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    assert post.params["text"].startswith("Attach the CSV file to the message that says `classify`")
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []


# -- classify --------------------------------------------------------------------------------------


def test_classify_answers_with_the_csv_annotated_and_a_chart(bot_server: BotServer) -> None:
    seed(bot_server)
    rows = [("id", "text")] + [
        (str(n), f"refund the charge on my card {n}" if n % 2 else f"my parcel delivery is late {n}")
        for n in range(250)
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    event = send_csv(bot_server, out.getvalue(), "classify this please", name="tickets.csv")

    slack = bot_server.slack
    slack.wait_for("files.completeUploadExternal", count=2)
    bot_server.settle()
    (working,) = slack.calls("chat.postMessage")
    assert working.params["thread_ts"] == event["ts"]
    assert "Classifying tickets.csv against set *default*" in texts_of(working.params)
    updates = slack.calls("chat.update")
    progress = [texts_of(u.params) for u in updates[:-1]]
    assert len(progress) == 2  # a batch of 100 rows, then another, then the last 50 and the answer
    assert "100 of 250 rows (40%)" in progress[0] and "200 of 250 rows (80%)" in progress[1]
    assert all(u.params["ts"] == working.response["ts"] for u in updates)
    assert "Classified 250 rows of tickets.csv against set *default*: 125 billing, 125 shipping." in (
        texts_of(updates[-1].params)
    )

    table, chart = slack.uploads()
    assert table.filename == "tickets-classified.csv" and table.thread_ts == event["ts"]
    assert table.channels == [DM]
    got = list(csv.DictReader(io.StringIO(table.text)))
    assert list(got[0]) == [
        "id",
        "text",
        "label",
        "best_label",
        "confidence",
        "score:billing",
        "score:shipping",
    ]
    assert [r["id"] for r in got] == [str(n) for n in range(250)]
    assert all(r["label"] == ("billing" if int(r["id"]) % 2 else "shipping") for r in got)
    assert all(0.5 <= float(r["confidence"]) <= 1 for r in got)
    assert chart.filename == "tickets-labels.png" and chart.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert chart.thread_ts == event["ts"]
    assert bot_server.deps is not None
    assert len(bot_server.deps.store.recent_classifications(bot_server.team, limit=500)) == 250


def test_classify_over_the_row_cap_is_refused(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_CSV_ROWS": "5"})
    seed(server)
    send_csv(server, "text\n" + "".join(f"text {n}\n" for n in range(6)), "classify", name="big.csv")
    (update,) = server.slack.wait_for("chat.update")
    server.settle()
    assert update.params["text"] == (
        ":warning: big.csv has 6 rows; I classify at most 5 at a time (GEMBOT_MAX_CSV_ROWS): "
        "split it into smaller files."
    )
    assert not server.slack.uploads()
    assert server.deps is not None and server.deps.store.recent_classifications(server.team) == []


def test_classify_with_texts_over_the_bound_is_refused_before_any_job(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url, env={"GEMBOT_MAX_TEXT_CHARS": "100"})
    seed(server)
    rows = [f"{n},ticket number {n}\n" for n in range(1, 11)]
    rows[2] = "3," + "z" * 101 + "\n"  # line 4 of the file
    send_csv(server, "id,text\n" + "".join(rows), "classify", name="tickets.csv")
    (update,) = server.slack.wait_for("chat.update")
    server.settle()
    assert update.params["text"] == (
        ":warning: tickets.csv has a text longer than 100 characters in row 4, so I classified "
        "nothing: shorten it (whoever runs me can raise GEMBOT_MAX_TEXT_CHARS)."
    )
    assert server.deps is not None
    assert server.deps.store.jobs.find(team_id=server.team) == []  # no job stored, none to resume
    assert server.deps.store.recent_classifications(server.team) == []
    assert not server.slack.uploads()
    assert server.gemini is not None and server.gemini.requests() == []


def test_classify_against_a_set_that_does_not_exist(bot_server: BotServer) -> None:
    send_csv(bot_server, "text\nhello\n", "classify set:nope")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert (
        "There is no label set 'nope' yet — add examples with `/label add LABEL: TEXT`"
        in update.params["text"]
    )


def test_classify_needs_a_text_column(bot_server: BotServer) -> None:
    seed(bot_server)
    send_csv(bot_server, "message\nhello\n", "classify", name="bad.csv")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["text"] == ":warning: bad.csv needs a 'text' column; it has 'message'."


def test_a_windows_1252_csv_is_read(bot_server: BotServer) -> None:
    send_csv(bot_server, "text,label\ncafé crème,drinks\nthé,drinks\n".encode("cp1252"), "import")
    (update,) = bot_server.slack.wait_for("chat.update")
    assert "Imported 2 examples into 1 label" in update.params["text"]
    assert bot_server.deps is not None
    assert [e.text for e in bot_server.deps.store.list_examples(bot_server.team, "default")] == [
        "café crème",
        "thé",
    ]


# -- the pure parts --------------------------------------------------------------------------------


def test_what_a_message_asks_of_a_csv() -> None:
    assert bulk.parse_request("Import this") == bulk.CsvRequest("import", "default")
    assert bulk.parse_request("classify set:support please") == bulk.CsvRequest("classify", "support")
    assert bulk.parse_request('import set:"customer care"') == bulk.CsvRequest("import", "customer care")
    assert bulk.parse_request("importance of classifying") == bulk.CsvRequest(None, "default")
    assert bulk.parse_request("import then classify").ambiguous
    assert bulk.is_bare_request("classify set:x") and bulk.is_bare_request("Import.")
    assert not bulk.is_bare_request("how do I classify a text?")


def test_batches_stay_few_on_big_files() -> None:
    assert [bulk.batch_size(n) for n in (1, 250, 2_000, 2_001, 10_000)] == [100, 100, 100, 200, 500]
    assert -(-10_000 // bulk.batch_size(10_000)) <= bulk.MAX_UPDATES
