"""Who added each example and whether its author is a file's claim (migration 0008), kept by `Store`
on SQLite and PostgreSQL; and `gembot labels import` marking its rows as a file's."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.store import ExampleInput, Store
from tests.support.cli_support import on_database

T1 = "T1"
T2 = "T2"


def test_an_example_keeps_who_added_it_and_where_its_author_came_from(store: Store) -> None:
    (said,) = store.add_examples(
        T1, "support", [ExampleInput("bug", "It crashes", author="U0ANA")], actor="U0ANA", added_by="U0ANA"
    ).ids
    claimed = store.add_examples(
        T1,
        "support",
        [ExampleInput("bug", "It freezes", author="U0BO"), ExampleInput("idea", "Dark mode", author="U0CY")],
        actor="U0IMPORTER",
        added_by=" U0IMPORTER ",
        author_from_file=True,
    ).ids
    plain = store.add_examples(T1, "support", [ExampleInput("bug", "It hangs", author="U0DEE")]).ids[0]

    by_id = {e.id: e for e in store.list_examples(T1, "support")}
    assert (by_id[said].author, by_id[said].added_by, by_id[said].author_from_file) == (
        "U0ANA",
        "U0ANA",
        False,
    )
    for example_id, author in zip(claimed, ("U0BO", "U0CY"), strict=True):
        record = by_id[example_id]
        assert (record.author, record.added_by, record.author_from_file) == (author, "U0IMPORTER", True)
    # Said nothing: no adder, and the author is not a file's (as before these fields existed).
    assert (by_id[plain].added_by, by_id[plain].author_from_file) == (None, False)
    assert store.get_example(T1, "support", claimed[0]) == by_id[claimed[0]]
    assert store.remove_example(T1, "support", claimed[1]) == by_id[claimed[1]]


def test_example_added_by_reads_the_example_first_then_the_change_log(store: Store) -> None:
    imported = store.add_examples(
        T1,
        "support",
        [ExampleInput("bug", "one"), ExampleInput("bug", "two")],
        actor="U0IMPORTER",
        added_by="U0IMPORTER",
        author_from_file=True,
    ).ids
    # An import of several names no example in the change log: the example itself says.
    assert [store.example_added_by(T1, i) for i in imported] == ["U0IMPORTER", "U0IMPORTER"]
    assert store.example_added_by(T2, imported[0]) is None  # another workspace's example
    # Without `added_by` (the command line; examples from before 0008), the log's `add` entry.
    (logged,) = store.add_examples(T1, "support", [ExampleInput("bug", "three")], actor="cli:ops").ids
    assert store.example_added_by(T1, logged) == "cli:ops"
    unknown = store.add_examples(T1, "support", [ExampleInput("bug", "4"), ExampleInput("bug", "5")])
    assert store.example_added_by(T1, unknown.ids[0]) is None


def test_a_text_already_there_keeps_its_own_provenance(store: Store) -> None:
    (first,) = store.add_examples(
        T1, "support", [ExampleInput("bug", "It crashes", author="U0ANA")], added_by="U0ANA"
    ).ids
    again = store.add_examples(
        T1,
        "support",
        [ExampleInput("bug", "It crashes", author="U0MALLORY"), ExampleInput("bug", "new")],
        added_by="U0MALLORY",
        author_from_file=True,
    )
    assert (again.added, again.skipped) == (1, 1)
    kept = store.get_example(T1, "support", first)
    assert (kept.author, kept.added_by, kept.author_from_file) == ("U0ANA", "U0ANA", False)


def test_added_by_is_checked_like_other_input(store: Store) -> None:
    (blank,) = store.add_examples(T1, "support", [ExampleInput("bug", "one")], added_by="   ").ids
    assert store.get_example(T1, "support", blank).added_by is None
    (longest,) = store.add_examples(T1, "support", [ExampleInput("bug", "two")], added_by="U" * 200).ids
    assert store.get_example(T1, "support", longest).added_by == "U" * 200
    with pytest.raises(InvalidInput, match="adder is longer than 200"):
        store.add_examples(T1, "support", [ExampleInput("bug", "three")], added_by="U" * 201)
    assert [e.text for e in store.list_examples(T1, "support")] == ["one", "two"]


def test_the_command_line_import_marks_its_authors_as_the_files(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = on_database(database_url, tmp_path, monkeypatch, capsys)
    path = tmp_path / "claimed.csv"
    path.write_text("text,label,author\nIt crashes,bug,U0BOSS\n", encoding="utf-8")
    assert cli("labels", "import", str(path), "--team", T1).code == 0
    assert cli("labels", "add", "bug", "It hangs", "--author", "U0OPS", "--team", T1).code == 0
    store = Store.open(database_url, migrate=False)
    try:
        imported, added = store.list_examples(T1, "default")
        assert (imported.text, imported.author, imported.author_from_file) == ("It crashes", "U0BOSS", True)
        # Added by the command line (`cli:USER`), which no Slack user is: it gives no one in Slack
        # a right to remove the example.
        assert imported.added_by is not None and imported.added_by.startswith("cli")
        # `labels add --author` is the operator's word, who has the database anyway.
        assert (added.text, added.author, added.author_from_file) == ("It hangs", "U0OPS", False)
        assert added.added_by == imported.added_by
    finally:
        store.close()
