"""Grading answers against the expected column: exact, contains, regex and json, and what is not graded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.experiments.scoring import MAX_REGEX_CHARS, normalise, score
from core.experiments.spec import Scoring

EXACT = Scoring(mode="exact", expected="label")
CONTAINS = Scoring(mode="contains", expected="label")


def regex(pattern: str) -> Scoring:
    return Scoring(mode="regex", expected="label", argument=pattern)


def json_field(path: str) -> Scoring:
    return Scoring(mode="json", expected="label", argument=path)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("  Positive  ", "positive"),
        ("**Positive.**", "positive"),
        ('"*Yes*."', "yes"),
        ("« Oui ! »", "oui"),
        ("`neutral`", "neutral"),
        ("_very_ negative", "very_ negative"),  # only the ends are stripped
        ("ＰＯＳＩＴＩＶＥ", "positive"),  # full-width letters (NFKC)
        ("Straße", "strasse"),  # casefolded, not just lowered
        ("two\n\twords", "two words"),
        ("C#.", "c#"),
        ("-5", "-5"),  # a sign is not punctuation to strip
        ("...", ""),
    ],
)
def test_normalise(text: str, normal: str) -> None:
    assert normalise(text) == normal


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)


@pytest.mark.parametrize(
    ("answer", "expected", "right"),
    [
        ("Positive", "positive", 1.0),
        ("**Positive.**", "Positive", 1.0),
        ("ＰＯＳＩＴＩＶＥ", "positive", 1.0),
        ("Positive, mostly", "positive", 0.0),
        ("The tone is positive.", "positive", 0.0),
        ("-5", "5", 0.0),
        ("C#", "C", 0.0),
    ],
)
def test_exact(answer: str, expected: str, right: float) -> None:
    assert score(EXACT, answer, {"label": expected}) == right


@pytest.mark.parametrize(
    ("answer", "expected", "right"),
    [
        ("The tone is mostly NEGATIVE overall.", "negative", 1.0),
        ("The tone is positive.", "negative", 0.0),
        ("The tone is\n  very   negative", "very negative", 1.0),
    ],
)
def test_contains(answer: str, expected: str, right: float) -> None:
    assert score(CONTAINS, answer, {"label": expected}) == right


@given(st.text().filter(lambda t: t.strip()))
def test_an_answer_equal_to_the_expected_value_is_right_in_both_modes(text: str) -> None:
    assert score(EXACT, text, {"label": text}) == 1.0
    assert score(CONTAINS, text, {"label": text}) == 1.0


@pytest.mark.parametrize("mode", [EXACT, CONTAINS, regex(r"\w+"), json_field("label")])
@pytest.mark.parametrize("row", [{"label": ""}, {"label": "   "}, {"other": "x"}])
def test_a_row_without_an_expected_value_is_not_graded(mode: Scoring, row: dict[str, str]) -> None:
    assert score(mode, "anything", row) is None


def test_no_scoring_and_the_judge_give_no_score_here() -> None:
    assert score(Scoring(), "Positive", {"label": "Positive"}) is None
    judged = Scoring(mode="judge", argument="Is it polite?", judge_model="gemini-2.5-flash")
    assert score(judged, "Positive", {"label": "Positive"}) is None


# -- regex -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "answer", "expected", "right"),
    [
        # No group: pass when the pattern is found, {expected} standing for the value as a literal.
        (r"\b{expected}\b", "It is a cat.", "cat", 1.0),
        (r"\b{expected}\b", "concatenate", "cat", 0.0),
        (r"{expected}", "I like C++ best", "C++", 1.0),
        (r"{expected}", "I like C best", "C++", 0.0),  # escaped: `+` is not a repeat
        (r"{expected}", "the cost is $5 (five)", "$5 (five)", 1.0),
        (r"{expected}", "It is positive", "Positive", 0.0),  # case counts...
        (r"(?i){expected}", "It is positive", "Positive", 1.0),  # ...unless the pattern says not
        (r"^\d+$", "42", "ignored", 1.0),
        (r"^\d+$", "forty-two", "ignored", 0.0),
        # A group: its text must equal the expected value, normalised.
        (r"Answer:\s*(\w+)", "Let me think.\nAnswer: **Positive**", "positive", 0.0),  # as written
        (r"Answer:\s*\**(\w+)", "Let me think.\nAnswer: **Positive**", "positive", 1.0),
        (r"Answer:\s*(\w+)", "Answer: negative", "positive", 0.0),
        (r"Answer:\s*(\w+)", "I cannot tell.", "positive", 0.0),
        (r"Answer:\s*(\w+)?", "Answer: ", "positive", 0.0),  # a group that took part in nothing
    ],
)
def test_regex(pattern: str, answer: str, expected: str, right: float) -> None:
    assert score(regex(pattern), answer, {"label": expected}) == right


def test_regex_sees_only_the_start_of_a_long_answer() -> None:
    ends_at_the_cap = "x" * (MAX_REGEX_CHARS - 6) + "needle" + " and more"
    crosses_the_cap = "x" * (MAX_REGEX_CHARS - 3) + "needle"
    assert score(regex("needle"), ends_at_the_cap, {"label": "needle"}) == 1.0
    assert score(regex("needle"), crosses_the_cap, {"label": "needle"}) == 0.0
    assert score(regex("nee"), crosses_the_cap, {"label": "needle"}) == 1.0


def test_a_pattern_that_breaks_once_expected_is_filled_in_says_so() -> None:
    # As written, the class is the range a-{ (and `}`); filled in with "A", a range from a down to A.
    broken = regex("[a-{expected}]")
    assert score(broken, "b", {"label": "p"}) == 1.0
    with pytest.raises(InvalidInput, match=r"with \{expected\} filled in"):
        score(broken, "anything", {"label": "A"})


# -- json ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "answer", "expected", "right"),
    [
        ("label", '{"label": "Positive"}', "positive", 1.0),
        ("label", '{"label": "negative"}', "positive", 0.0),
        ("label", '```json\n{"label": "Positive"}\n```', "positive", 1.0),
        ("label", '```\n{"label": "Positive"}\n```', "positive", 1.0),
        ("result.tone", '{"result": {"tone": "Calm", "score": 3}}', "calm", 1.0),
        ("result.score", '{"result": {"tone": "Calm", "score": 3}}', "3.0", 1.0),
        ("result.score", '{"result": {"tone": "Calm", "score": 3}}', "4", 0.0),
        ("result.score", '{"result": {"tone": "Calm", "score": 3}}', "three", 0.0),
        ("items.1.label", '{"items": [{"label": "a"}, {"label": "b"}]}', "b", 1.0),
        ("0", '["first", "second"]', "first", 1.0),
        ("ok", '{"ok": true}', "true", 1.0),
        ("ok", '{"ok": true}', "1", 0.0),  # a boolean is not the number 1
        ("ratio", '{"ratio": 0.1}', "0.10", 1.0),  # by value, without float rounding
        ("ratio", '{"ratio": 0.1}', "NaN", 0.0),
        ("ratio", '{"ratio": 0.1}', "sNaN", 0.0),
        ("big", '{"big": ' + "9" * 400 + "}", "9" * 400, 1.0),
        # Not JSON, or no such field: the model's wrong answer.
        ("label", "The label is positive", "positive", 0.0),
        ("label", '{"tone": "positive"}', "positive", 0.0),
        ("label.inner", '{"label": "positive"}', "positive", 0.0),
        ("items.5.label", '{"items": [{"label": "a"}]}', "a", 0.0),
        ("items.-1", '{"items": ["a"]}', "a", 0.0),
    ],
)
def test_json_field(path: str, answer: str, expected: str, right: float) -> None:
    assert score(json_field(path), answer, {"label": expected}) == right
