"""GEMBOT_MAX_TEXT_CHARS on files: a label import or a table to classify with a text over the bound
is refused whole, naming its rows, by the parsers the CLI and Slack share; and on the command line,
as one line on stderr with exit status 1, nothing written (on SQLite and PostgreSQL).

The Slack side (a CSV sent by DM, the "Add as label example" shortcut) is tested through the
running app in tests/handlers/test_bulk.py and tests/handlers/shortcuts/test_add_from_message.py.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from core.csv_tables import parse_text_table
from core.errors import InvalidInput, TextsTooLong
from core.labels_io import parse_labels
from handlers.bounds import too_long_rows
from tests.support.cli_support import CLI, Run, on_database

LIMIT = 100
LONG = "x" * (LIMIT + 1)


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


# -- the sentence -------------------------------------------------------------------------------


def test_the_error_names_the_first_rows_and_counts_the_rest() -> None:
    one = TextsTooLong("labels.csv", [4], limit=4_000)
    assert str(one) == (
        "labels.csv has a text longer than 4,000 characters (GEMBOT_MAX_TEXT_CHARS) in row 4: shorten it"
    )
    three = TextsTooLong("labels.csv", [3, 7, 12], limit=4_000)
    assert three.where == "rows 3, 7 and 12" and three.texts == "3 texts"
    assert str(three).endswith("in rows 3, 7 and 12: shorten them")
    many = TextsTooLong("export.json", [2, 3, 5, 8, 13, 21, 34], limit=100, unit="example")
    assert many.where == "examples 2, 3, 5, 8, 13 and 2 more"
    assert isinstance(many, InvalidInput)  # so every surface already shows it in one line
    assert too_long_rows(three, so="I imported nothing") == (
        "labels.csv has 3 texts longer than 4,000 characters in rows 3, 7 and 12, so I imported "
        "nothing: shorten them (whoever runs me can raise GEMBOT_MAX_TEXT_CHARS)."
    )


# -- label files ----------------------------------------------------------------------------------


def test_a_label_csv_with_long_texts_is_refused_naming_the_lines_they_start_on() -> None:
    content = (
        "text,label\n"  # line 1
        "short,a\n"  # 2
        f"{LONG},a\n"  # 3
        "\n"  # 4: blank
        f'"{"y" * 60}\n{"y" * 60}",b\n'  # 5-6: one cell over two lines, 121 characters
        "fine,b\n"  # 7
        f"{LONG},b\n"  # 8
    )
    with pytest.raises(TextsTooLong) as refused:
        parse_labels(content, filename="labels.csv", max_chars=LIMIT)
    assert refused.value.rows == (3, 5, 8) and refused.value.limit == LIMIT
    assert str(refused.value).startswith("labels.csv has 3 texts longer than 100 characters")
    # Without a bound (or with a bound the texts keep to), the same file reads as it always did.
    assert len(parse_labels(content, filename="labels.csv")) == 5
    assert len(parse_labels(content, filename="labels.csv", max_chars=121)) == 5


def test_the_bound_counts_the_text_as_stored() -> None:
    # Exactly the bound is fine; surrounding spaces are stripped before counting, as before storing.
    exact = csv_text([["text", "label"], ["z" * LIMIT, "a"], ["  " + "z" * LIMIT + "  ", "b"]])
    assert [len(r.text) for r in parse_labels(exact, max_chars=LIMIT)] == [LIMIT, LIMIT]
    with pytest.raises(TextsTooLong, match="the CSV file has a text longer than 100 characters"):
        parse_labels(csv_text([["text", "label"], [LONG, "a"]]), max_chars=LIMIT)


def test_other_mistakes_keep_their_line_numbers() -> None:
    multi_line = 'text,label\n"two\nlines",a\n,b\n'
    with pytest.raises(InvalidInput, match=r"^row 4 has no text$"):
        parse_labels(multi_line, max_chars=LIMIT)
    with pytest.raises(InvalidInput, match=r"^row 3 has no label$"):
        parse_labels("text,label\nfine,a\nno label,\n", max_chars=LIMIT)
    with pytest.raises(InvalidInput, match="needs 'text' and 'label' columns; it has 'words'"):
        parse_labels("words\nhello\n", filename="wrong.csv", max_chars=LIMIT)


def test_an_export_with_long_texts_names_the_examples() -> None:
    export = json.dumps(
        {
            "format": "gembot.labels/1",
            "set": "default",
            "examples": [
                {"label": "a", "text": "fine"},
                {"label": "a", "text": LONG},
                {"label": "b", "text": "fine too"},
            ],
        }
    )
    with pytest.raises(TextsTooLong) as refused:
        parse_labels(export, filename="labels.json", max_chars=LIMIT)
    assert refused.value.where == "example 2"


# -- tables to classify -------------------------------------------------------------------------------


def test_a_table_with_long_texts_is_refused_naming_the_lines_they_start_on() -> None:
    content = (
        "id,text\n"  # line 1
        "1,short\n"  # 2
        "\n"  # 3: blank
        f"2,{LONG}\n"  # 4
        f'3,"{"y" * 60}\n{"y" * 60}"\n'  # 5-6
        f"4,{LONG}\n"  # 7
    )
    with pytest.raises(TextsTooLong) as refused:
        parse_text_table(content, filename="tickets.csv", max_chars=LIMIT)
    assert refused.value.rows == (4, 5, 7)
    assert str(refused.value) == (
        "tickets.csv has 3 texts longer than 100 characters (GEMBOT_MAX_TEXT_CHARS) in rows 4, 5 and 7: "
        "shorten them"
    )
    # A job resumed after the bound was lowered reads its stored file without one.
    assert len(parse_text_table(content).rows) == 4


def test_an_empty_text_is_named_by_its_line() -> None:
    with pytest.raises(InvalidInput, match=r"has an empty text on line 5$"):
        parse_text_table('id,text\n1,"a\nb"\n\n2,\n', max_chars=LIMIT)


# -- the command line ----------------------------------------------------------------------------------


@pytest.fixture
def cli(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CLI:
    return on_database(database_url, tmp_path, monkeypatch, capsys, GEMBOT_MAX_TEXT_CHARS=str(LIMIT))


def one_line_error(r: Run) -> str:
    assert r.code == 1 and "Traceback" not in r.err
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1, r.err
    return lines[0]


def test_labels_import_refuses_a_file_with_long_texts_and_writes_nothing(cli: CLI, tmp_path: Path) -> None:
    assert cli("labels", "add", "a", "already there").code == 0
    before = cli("labels", "export").out
    path = tmp_path / "labels.csv"
    path.write_text(csv_text([["text", "label"], ["fine", "a"], [LONG, "b"], ["fine too", "b"]]), "utf-8")
    assert one_line_error(cli("labels", "import", str(path))) == (
        f"error: {path} has a text longer than 100 characters (GEMBOT_MAX_TEXT_CHARS) in row 3: shorten it"
    )
    assert cli("labels", "export").out == before
    assert [c for c in cli("labels", "history", "--json").out.splitlines() if '"import"' in c] == []
    # Within the bound it goes in, all of it.
    path.write_text(csv_text([["text", "label"], ["fine", "a"], ["z" * LIMIT, "b"]]), "utf-8")
    done = cli("labels", "import", str(path))
    assert done.code == 0, done.err
    assert "imported 2 example(s) into 2 label(s)" in done.out


def test_labels_add_refuses_a_long_example_and_writes_nothing(cli: CLI) -> None:
    assert one_line_error(cli("labels", "add", "b", LONG)) == (
        f"error: the example is {len(LONG):,} characters long, more than 100 (GEMBOT_MAX_TEXT_CHARS): "
        "shorten it"
    )
    assert LONG not in cli("labels", "export").out
    assert cli("labels", "add", "b", "z" * LIMIT).code == 0


def test_classify_input_refuses_a_file_with_long_texts_and_writes_no_output(cli: CLI, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(csv_text([["id", "text"], ["1", "fine"], ["2", LONG], ["3", LONG]]), "utf-8")
    # Refused while reading the file: no set is needed, no model is loaded, nothing is written.
    error = one_line_error(cli("classify", "--input", str(src), "--output", str(dst)))
    assert error == (
        f"error: {src} has 2 texts longer than 100 characters (GEMBOT_MAX_TEXT_CHARS) in rows 3 and 4: "
        "shorten them"
    )
    assert not dst.exists()
