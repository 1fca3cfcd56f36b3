"""Templates and input tables: what an experiment refuses before it sends anything."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.experiments.cases import Template, read_cases


def test_placeholders_in_order_of_first_use_and_escaped_braces_are_literal() -> None:
    template = Template('Tone of {text} ({lang}), again {text}; JSON like {{"a": 1}}')
    assert template.placeholders == ("text", "lang")
    rendered = template.render({"text": "hi", "lang": "en"})
    assert rendered == 'Tone of hi (en), again hi; JSON like {"a": 1}'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Classify this", "no {column} placeholder"),
        ("Only {{escaped}}", "no {column} placeholder"),
        ("A lone { brace {text}", "lone '{'"),
        ("Empty {} here {text}", "empty placeholder"),
        ("   ", "empty"),
    ],
)
def test_templates_that_cannot_work_are_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match="template") as caught:
        Template(text)
    assert words in str(caught.value)


def test_a_placeholder_without_its_column_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        Template("{text} in {language}").check(("text", "label"), source="cases.csv")
    message = str(caught.value)
    assert "{language}" in message and "{text}" not in message.split("but")[0].replace("{language}", "")
    assert "cases.csv" in message and "text, label" in message


def test_attribute_and_index_lookups_are_plain_column_names_not_python() -> None:
    # str.format would evaluate these; here they are just names that no column has.
    template = Template("{text.__class__} {text[0]}")
    with pytest.raises(InvalidInput, match="no such column"):
        template.check(("text",))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=50))
def test_a_cell_is_inserted_verbatim_whatever_it_holds(cell: str) -> None:
    assert Template("<<{text}>>").render({"text": cell}) == f"<<{cell}>>"


def test_csv_rows_keep_every_column_and_spreadsheet_quotes_come_off() -> None:
    cases = read_cases(
        'text,expected\nI love it,positive\n"\'=SUM(A1)",neutral\n',
        filename="c.csv",
        max_rows=10,
        max_chars=100,
    )
    assert cases.columns == ("text", "expected")
    assert cases.rows == (
        {"text": "I love it", "expected": "positive"},
        {"text": "=SUM(A1)", "expected": "neutral"},
    )


def test_jsonl_rows_turn_values_into_text_and_fill_missing_keys() -> None:
    lines = [json.dumps({"text": "a", "n": 3}), "", json.dumps({"text": "b", "flag": True, "x": None})]
    cases = read_cases("\n".join(lines).encode(), filename="c.jsonl", max_rows=10, max_chars=100)
    assert cases.columns == ("text", "n", "flag", "x")
    assert cases.rows[0] == {"text": "a", "n": "3", "flag": "", "x": ""}
    assert cases.rows[1] == {"text": "b", "n": "", "flag": "true", "x": ""}


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (b"\xff\xfe bad", "c.csv", "not UTF-8"),
        ("text\nhello\x00", "c.csv", "NUL"),
        ("", "c.csv", "empty"),
        ("text\n", "c.csv", "no rows"),
        ("text,text\na,b\n", "c.csv", "appears twice"),
        ("text,\na,b\n", "c.csv", "needs a name"),
        ("text\na,b,c\n", "c.csv", "row 1 has 3 cells"),
        ("[1, 2]\n", "c.jsonl", "not a JSON object"),
        ("{nope\n", "c.jsonl", "line 1 is not JSON"),
        ("text\n" + "a\n" * 4, "c.csv", "at most 3"),
        ("text\n" + "x" * 11 + "\n", "c.csv", "row 1"),
    ],
)
def test_unreadable_inputs_are_refused_whole(content: str | bytes, filename: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_cases(content, filename=filename, max_rows=3, max_chars=10)
    assert words in str(caught.value)
