"""The label-set change log: every change is logged in its own transaction, read back newest first,
from the store and from `gembot labels history`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.store import ExampleInput, LabelChangeRecord, Store
from tests.support.cli_support import on_database


def summary(change: LabelChangeRecord) -> tuple[object, ...]:
    return (change.set_name, change.actor, change.action, change.label, change.count, change.text)


def test_each_kind_of_change_is_logged_with_who_and_what(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    added = store.add_examples("T1", "intents", [ExampleInput("billing", "charged twice")], actor="U1")
    store.add_examples(
        "T1",
        "intents",
        [ExampleInput("shipping", "late parcel"), ExampleInput("shipping", "lost parcel")],
        actor="U2",
    )
    store.add_examples("T1", "intents", [ExampleInput("billing", "charged twice")], actor="U1")  # no change
    store.remove_example("T1", "intents", added.ids[0], actor="U3")
    store.remove_label("T1", "intents", "shipping", actor="cli:ops")
    store.add_examples("T1", "mood", [ExampleInput("happy", "a good day"), ExampleInput("sad", "a bad day")])
    store.remove_set("T1", "mood", actor="U4")

    changes = store.label_history("T1")
    assert [summary(c) for c in changes] == [
        ("mood", "U4", "remove_set", None, 2, None),
        ("mood", None, "import", None, 2, None),
        ("intents", "cli:ops", "remove_label", "shipping", 2, None),
        ("intents", "U3", "remove", "billing", 1, "charged twice"),
        ("intents", "U2", "import", "shipping", 2, None),
        ("intents", "U1", "add", "billing", 1, "charged twice"),
    ]
    assert changes[-1].example_id == added.ids[0] and changes[-3].example_id == added.ids[0]
    assert all(before <= c.created_at <= datetime.now(UTC) + timedelta(seconds=5) for c in changes)
    assert [c.action for c in store.label_history("T1", set_name="intents", limit=2)] == [
        "remove_label",
        "remove",
    ]
    assert store.label_history("T2") == []  # another workspace sees nothing


def test_a_change_that_fails_logs_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.add_examples("T1", "intents", [ExampleInput("billing", "fine"), ExampleInput("", "no label")])
    assert store.label_history("T1") == []


def test_who_added_an_example_is_known_from_the_log(store: Store) -> None:
    (first,) = store.add_examples(
        "T1", "intents", [ExampleInput("billing", "one", author="U9")], actor="U1"
    ).ids
    assert store.example_added_by("T1", first) == "U1"
    assert store.example_added_by("T2", first) is None
    imported = store.add_examples(
        "T1", "intents", [ExampleInput("billing", "two"), ExampleInput("billing", "3")]
    )
    assert store.example_added_by("T1", imported.ids[0]) is None  # an import names no single example
    record = store.get_example("T1", "intents", first)
    assert (record.label, record.text, record.author) == ("billing", "one", "U9")


def test_long_texts_are_kept_as_a_preview(store: Store) -> None:
    store.add_examples("T1", "intents", [ExampleInput("billing", "word " * 200)], actor="U1")
    (change,) = store.label_history("T1")
    assert change.text is not None and len(change.text) == 200 and change.text.endswith("…")


# -- the command line ---------------------------------------------------------------------------


def test_the_cli_logs_its_changes_and_shows_the_history(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gembot = on_database(database_url, tmp_path, monkeypatch, capsys, USER="ops", LOGNAME="ops")
    # A change made from Slack, in the same workspace the CLI uses by default.
    store = Store.open(database_url)
    store.add_examples("local", "default", [ExampleInput("shipping", "late parcel")], actor="U0SLACK")
    store.close()

    assert gembot("labels", "add", "billing", "charged twice").code == 0
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("text,label\nrefund please,billing\nlost parcel,shipping\n")
    assert gembot("labels", "import", str(csv_file), "--set", "other").code == 0
    r = gembot("labels", "list", "--json")
    code, out = r.code, r.out
    (billing,) = [json.loads(line) for line in out.splitlines() if json.loads(line)["label"] == "billing"]
    assert gembot("labels", "remove", str(billing["id"])).code == 0

    r = gembot("labels", "history")

    code, out, err = r.code, r.out, r.err
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    assert "cli:ops" in lines[0] and f"removed #{billing['id']} from 'billing' in set 'default'" in lines[0]
    assert "cli:ops" in lines[1] and "imported 2 example(s) in set 'other'" in lines[1]
    assert "cli:ops" in lines[2] and f"added #{billing['id']} to 'billing' in set 'default'" in lines[2]
    assert "U0SLACK" in lines[3] and "added #" in lines[3] and "late parcel" in lines[3]
    assert all(line[:4].isdigit() and " UTC " in line for line in lines)

    r = gembot("labels", "history", "--set", "default", "-n", "1", "--json")

    code, out = r.code, r.out
    (entry,) = [json.loads(line) for line in out.splitlines()]
    assert (entry["set"], entry["actor"], entry["action"], entry["label"]) == (
        "default",
        "cli:ops",
        "remove",
        "billing",
    )
    assert datetime.fromisoformat(entry["created_at"]).tzinfo is not None

    r = gembot("labels", "history", "--team", "T0NONE")

    code, out = r.code, r.out
    assert code == 0 and "no changes" in out
