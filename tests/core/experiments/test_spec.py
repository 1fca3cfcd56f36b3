"""The locked configuration: what it refuses, what it stores, and the cache key it gives."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.experiments.spec import ExperimentSpec, Generation, Scoring, request_key, sdk_version


def _spec(**changes: object) -> ExperimentSpec:
    values: dict[str, object] = {
        "template": "Tone of {text}",
        "models": ("gemini-2.5-flash-lite", "gemini-2.5-flash"),
        "generation": Generation(
            system="Be terse.", temperature=0.0, seed=7, response_schema={"type": "object"}
        ),
        "scoring": Scoring.parse("judge:Is it polite?", expected="expected", judge_model="gemini-2.5-pro"),
    }
    values.update(changes)
    return ExperimentSpec(**values)  # type: ignore[arg-type]


def test_a_spec_reads_back_field_for_field_with_the_sdk_version() -> None:
    spec = _spec()
    stored = spec.to_json()
    assert stored["sdk"] == sdk_version() != "unknown"
    assert ExperimentSpec.of(stored) == spec


def test_a_spec_of_another_shape_is_refused_in_words() -> None:
    with pytest.raises(InvalidInput, match="another version"):
        ExperimentSpec.of({**_spec().to_json(), "v": 99})
    broken = _spec().to_json()
    del broken["template"]
    with pytest.raises(InvalidInput, match="unreadable"):
        ExperimentSpec.of(broken)


@pytest.mark.parametrize(
    ("score", "expected", "words"),
    [
        ("exact", None, "needs --expected"),
        ("contains", None, "needs --expected"),
        ("regex:(", "e", "does not compile"),
        ("regex:", "e", "needs a pattern"),
        ("json:", "e", "needs a field name"),
        ("judge:  ", None, "needs a rubric"),
        ("fuzzy", "e", "unknown --score"),
        ("exact:x", "e", "takes nothing"),
    ],
)
def test_score_modes_without_what_they_need_are_refused(score: str, expected: str | None, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        Scoring.parse(score, expected=expected, judge_model="m")


def test_expected_alone_means_exact_and_nothing_means_no_scoring() -> None:
    assert Scoring.parse(None, expected="label", judge_model="m") == Scoring(mode="exact", expected="label")
    assert Scoring.parse(None, expected=None, judge_model="m").mode == "none"
    judged = Scoring.parse("judge:Polite?", expected=None, judge_model="gemini-2.5-pro")
    assert (judged.argument, judged.judge_model, judged.judge_generation.temperature) == (
        "Polite?",
        "gemini-2.5-pro",
        0.0,
    )


@pytest.mark.parametrize(
    ("models", "words"),
    [((), "at least one model"), (("a b",), "not a model name"), (("m", "m"), "named twice")],
)
def test_bad_model_lists_are_refused(models: tuple[str, ...], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _spec(models=models)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"temperature": 3.0}, "between 0 and 2"),
        ({"max_output_tokens": 0}, "at least 1"),
        ({"thinking_budget": -2}, "-1"),
    ],
)
def test_generation_settings_out_of_range_are_refused(settings: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        Generation(**settings)  # type: ignore[arg-type]


def test_the_request_key_changes_with_model_settings_and_prompt_and_nothing_else() -> None:
    base = request_key("gemini-2.5-flash", Generation(temperature=0.0), "hello")
    assert base == request_key("models/gemini-2.5-flash", Generation(temperature=0.0), "hello")
    others = {
        request_key("gemini-2.5-pro", Generation(temperature=0.0), "hello"),
        request_key("gemini-2.5-flash", Generation(temperature=0.5), "hello"),
        request_key("gemini-2.5-flash", Generation(temperature=0.0, seed=1), "hello"),
        request_key("gemini-2.5-flash", Generation(temperature=0.0, system="x"), "hello"),
        request_key("gemini-2.5-flash", Generation(temperature=0.0), "hello "),
    }
    assert base not in others and len(others) == 5
