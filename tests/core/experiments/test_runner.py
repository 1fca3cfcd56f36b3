"""Running experiments through the real google-genai SDK against the Gemini stand-in: every model ×
row once, graded, paced, cached, resumable, with refusals and errors counted apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from core import daily_limits
from core.bulk_runner import JobInterrupted
from core.experiments.cases import Cases
from core.experiments.pacing import ModelLimiters
from core.experiments.runner import (
    KIND_CLI,
    ExperimentRunner,
    ExperimentStopped,
    Progress,
)
from core.experiments.spec import ExperimentSpec, Generation, Scoring
from core.gemini.client import GeminiClient
from core.store import Store
from tests.support.gemini import GeminiStandIn, Prompt
from tests.support.gemini_support import gemini_settings

MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash")
CASES = Cases(
    columns=("text", "expected"),
    rows=tuple(
        {"text": text, "expected": tone}
        for text, tone in [
            ("I love this", "positive"),
            ("This is awful", "negative"),
            ("The meeting is at 3", "neutral"),
            ("Great work", "positive"),
            ("I hate waiting", "negative"),
        ]
    ),
)


def tone_of(prompt: Prompt) -> str:
    """A model that knows love and hate; the lighter model is wrong about everything else."""
    text = prompt.last_user_text.lower()
    if "love" in text or "great" in text:
        return "Positive."
    if "awful" in text or "hate" in text:
        return "negative"
    return "neutral" if prompt.model == "gemini-2.5-flash" else "positive"


@pytest.fixture
def runner(store: Store, gemini_standin: GeminiStandIn) -> Iterator[ExperimentRunner]:
    settings = gemini_settings(gemini_standin, experiment_concurrency=4, generate_rpm=0, job_lease_seconds=30)
    yield ExperimentRunner(store, settings, GeminiClient(settings), flush_every=0.05)


def _spec(**changes: object) -> ExperimentSpec:
    values: dict[str, object] = {
        "template": "Tone of: {text}",
        "models": MODELS,
        "generation": Generation(temperature=0.0, seed=7),
        "scoring": Scoring.parse("exact", expected="expected", judge_model=None),
    }
    values.update(changes)
    return ExperimentSpec(**values)  # type: ignore[arg-type]


def _run(runner: ExperimentRunner, spec: ExperimentSpec, **kwargs: object) -> int:
    experiment, job = runner.create("T1", spec, CASES, name="tone", source="cases.csv", kind=KIND_CLI)
    runner.run(job, **kwargs)  # type: ignore[arg-type]
    return experiment.id


def test_every_model_answers_every_row_once_graded_with_its_tokens(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    experiment_id = _run(runner, _spec())
    results = store.experiments.results(experiment_id)
    assert len(results) == 10 and len(gemini_standin.requests("generate", action="generateContent")) == 10
    scores = {model: [r.score for r in results if r.model == model] for model in MODELS}
    assert scores == {"gemini-2.5-flash-lite": [1.0, 1.0, 0.0, 1.0, 1.0], "gemini-2.5-flash": [1.0] * 5}
    first = results[0]
    assert first.prompt == "Tone of: I love this" and first.outcome == "answered" and first.reason == "STOP"
    # The stand-in bills a token a word: "Tone of: I love this" is five, "Positive." one.
    assert (first.input_tokens, first.output_tokens, first.cached) == (5, 1, False)
    assert first.latency_ms > 0
    ended = store.experiments.get(experiment_id)
    job = store.jobs.get(ended.job_id or 0)
    # The job stays held until the results have been delivered.
    assert ended.state == "done" and job.state == "running"
    assert runner.finish(job) and store.jobs.get(job.id).state == "done"


def test_the_locked_configuration_is_what_goes_on_the_wire(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn
) -> None:
    schema = {"type": "object", "properties": {"tone": {"type": "string"}}, "required": ["tone"]}
    generation = Generation(
        system="Answer in one word.",
        temperature=0.2,
        seed=11,
        max_output_tokens=64,
        thinking_budget=0,
        response_schema=schema,
    )
    _run(runner, _spec(models=("gemini-2.5-flash",), generation=generation, scoring=Scoring()))
    sent = gemini_standin.last("generate", action="generateContent").json or {}
    config = sent["generationConfig"]
    assert config["temperature"] == 0.2 and config["seed"] == 11 and config["maxOutputTokens"] == 64
    # google-genai writes this one in snake_case; the API reads both spellings.
    assert config["thinkingConfig"] in ({"thinkingBudget": 0}, {"thinking_budget": 0})
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"] == schema
    assert sent["systemInstruction"]["parts"][0]["text"] == "Answer in one word."


def test_a_second_run_of_the_same_configuration_sends_nothing_unless_fresh(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    first = _run(runner, _spec())
    gemini_standin.clear_requests()
    second = _run(runner, _spec())
    assert gemini_standin.requests("generate") == []
    again = store.experiments.results(second)
    assert all(r.cached for r in again)
    assert [(r.answer, r.score, r.latency_ms) for r in again] == [
        (r.answer, r.score, r.latency_ms) for r in store.experiments.results(first)
    ]
    # Another temperature is another request.
    _run(runner, _spec(generation=Generation(temperature=0.5, seed=7)))
    assert len(gemini_standin.requests("generate")) == 10
    gemini_standin.clear_requests()
    _run(runner, _spec(), fresh=True)
    assert len(gemini_standin.requests("generate")) == 10


def test_refusals_safety_stops_and_errors_are_counted_apart_and_errors_are_not_cached(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    def script(prompt: Prompt) -> str | dict[str, object]:
        text = prompt.last_user_text
        if "awful" in text:
            return {"promptFeedback": {"blockReason": "SAFETY"}}
        if "hate" in text:
            return {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "SAFETY"}]}
        return tone_of(prompt)

    gemini_standin.answer_with(script)
    # One request at a time, so the failure below meets the first row.
    one_by_one = ExperimentRunner(
        store,
        runner.settings.model_copy(update={"experiment_concurrency": 1}),
        runner.gemini,
        flush_every=0.05,
    )
    gemini_standin.fail_next(1, status=400, message="Request contains an invalid argument.", on="generate")
    spec = _spec(models=("gemini-2.5-flash",))
    experiment_id = _run(one_by_one, spec)
    by_row = {r.row_index: r for r in store.experiments.results(experiment_id)}
    assert [by_row[i].outcome for i in range(5)] == ["error", "refused", "answered", "answered", "stopped"]
    assert "invalid argument" in (by_row[0].reason or "")
    assert (by_row[1].reason, by_row[4].reason) == ("SAFETY", "SAFETY")
    assert [by_row[i].score for i in range(5)] == [None, None, 1.0, 1.0, None]
    # The error is asked again by the next run; the refusal and the stop come from the cache.
    gemini_standin.clear_requests()
    again = _run(one_by_one, spec)
    asked = [(r.json or {})["contents"][-1]["parts"][-1]["text"] for r in gemini_standin.requests("generate")]
    assert asked == ["Tone of: I love this"]
    assert [r.cached for r in store.experiments.results(again)] == [False, True, True, True, True]


def test_an_interrupted_run_resumes_where_it_stopped_without_asking_twice(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    gemini_standin.latency(0.05, on="generate")
    experiment, job = runner.create("T1", _spec(), CASES, name="tone", source="cases.csv", kind=KIND_CLI)

    def stop_early(progress: Progress) -> None:
        if progress.done >= 1:
            runner.stop()

    with pytest.raises(JobInterrupted):
        runner.run(job, progress=stop_early)
    kept = len(store.experiments.results(experiment.id))
    assert 1 <= kept <= 8  # what was in flight when it stopped (four at a time), no more
    assert store.jobs.get(job.id).state == "queued" and store.jobs.get(job.id).rows_done == kept
    sent_before = len(gemini_standin.requests("generate"))
    assert sent_before == kept  # every request that went out was kept

    other = ExperimentRunner(store, runner.settings, runner.gemini, flush_every=0.05)
    (taken,) = store.jobs.claim(owner=other.owner, lease_seconds=30, job_id=job.id)
    other.run(taken)
    assert len(store.experiments.results(experiment.id)) == 10
    assert len(gemini_standin.requests("generate")) == 10
    assert store.experiments.get(experiment.id).state == "done"


def test_a_spent_daily_quota_stops_the_run_and_keeps_what_came_back(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    spec = _spec(models=("gemini-2.5-flash",))
    experiment, job = runner.create("T1", spec, CASES, name="tone", source="cases.csv", kind=KIND_CLI)
    gemini_standin.fail_next(10, status=429, quota="per_day", on="generate")
    with pytest.raises(ExperimentStopped, match="quota") as caught:
        runner.run(job)
    assert caught.value.total == 5
    assert store.experiments.results(experiment.id) == []
    assert store.jobs.get(job.id).state == "running"  # the caller decides: release or fail


def test_every_request_is_charged_to_whoever_runs_it(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    meter = daily_limits.Meter(store, daily_limits.UsageLimits(user_daily=7), today=lambda: date(2026, 12, 6))
    spec = _spec()
    experiment, job = runner.create("T1", spec, CASES, name="tone", source="cases.csv", kind=KIND_CLI)
    with daily_limits.acting_for(meter, daily_limits.Actor("T1", "U1")), pytest.raises(ExperimentStopped):
        runner.run(job)
    assert len(gemini_standin.requests("generate")) == 7
    assert store.usage("T1", "U1", date(2026, 12, 6)).user == 7
    assert len(store.experiments.results(experiment.id)) == 7


def test_requests_paced_under_the_limit_draw_no_429(store: Store, gemini_standin: GeminiStandIn) -> None:
    gemini_standin.answer_with(tone_of)
    gemini_standin.quota(4, window=0.5, on="generate")
    settings = gemini_settings(gemini_standin, experiment_concurrency=8, generate_rpm=4, job_lease_seconds=30)
    paced = ExperimentRunner(
        store, settings, GeminiClient(settings), limiters=ModelLimiters(4, window=0.5), flush_every=0.05
    )
    experiment_id = _run(paced, _spec())
    assert len(store.experiments.results(experiment_id)) == 10
    statuses = [r.status for r in gemini_standin.requests("generate")]
    assert statuses.count(429) == 0 and len(statuses) == 10


def test_a_judge_grades_each_answer_and_its_verdicts_are_cached_too(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    def answer(prompt: Prompt) -> str:
        if prompt.model == "gemini-2.5-pro":
            good = "Positive" in prompt.last_user_text or "negative" in prompt.last_user_text
            return json.dumps({"score": 5 if good else 2, "reason": "matches" if good else "off"})
        return tone_of(prompt)

    gemini_standin.answer_with(answer)
    spec = _spec(
        scoring=Scoring.parse("judge:Is the tone right?", expected="expected", judge_model="gemini-2.5-pro")
    )
    # One request at a time, so that the judge's cache is read before each verdict is asked.
    one_by_one = ExperimentRunner(
        store,
        runner.settings.model_copy(update={"experiment_concurrency": 1}),
        runner.gemini,
        flush_every=0.05,
    )
    experiment_id = _run(one_by_one, spec)
    results = store.experiments.results(experiment_id)
    judged = gemini_standin.requests("generate", action="generateContent")
    # An answer both models gave to the same row is judged once.
    distinct = {(r.prompt, r.answer) for r in results}
    assert len(distinct) == 6 and sum(r.model == "gemini-2.5-pro" for r in judged) == 6
    assert {r.score for r in results} <= {2.0, 5.0} and all(r.judge_reason for r in results)
    assert all(r.judge_input_tokens > 0 for r in results)
    gemini_standin.clear_requests()
    _run(runner, spec)
    assert gemini_standin.requests("generate") == []


def test_an_estimate_counts_tokens_on_a_sample_and_prices_the_rest(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn
) -> None:
    estimate = runner.estimate(_spec(generation=Generation(max_output_tokens=10)), CASES, source="cases.csv")
    counted = gemini_standin.requests("generate", action="countTokens")
    assert 2 <= len(counted) <= 10 and gemini_standin.requests("generate", action="generateContent") == []
    lite, flash = estimate.models
    assert (lite.requests, lite.cached, lite.output_tokens) == (5, 0, 50)
    assert lite.input_tokens > 0 and lite.cost is not None and flash.cost is not None
    assert flash.cost > lite.cost and estimate.requests == 10


def test_rows_that_make_the_same_prompt_are_asked_once(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    twice = Cases(columns=("text", "expected"), rows=(CASES.rows[0], CASES.rows[1], CASES.rows[0]))
    spec = _spec(models=("gemini-2.5-flash",))
    experiment, job = runner.create("T1", spec, twice, name="tone", source="cases.csv", kind=KIND_CLI)
    runner.run(job)
    assert len(gemini_standin.requests("generate")) == 2
    results = store.experiments.results(experiment.id)
    assert [(r.answer, r.cached) for r in results] == [
        ("Positive.", False),
        ("negative", False),
        ("Positive.", True),
    ]


def test_a_batch_experiment_that_expires_reads_as_errors_that_say_why(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    gemini_standin.batch_progress(pending_gets=1, running_gets=1)
    gemini_standin.end_batches("EXPIRED", n=1)
    quick = ExperimentRunner(
        store,
        runner.settings.model_copy(update={"batch_poll_seconds": 0.01}),
        runner.gemini,
        flush_every=0.05,
    )
    experiment_id = _run(quick, _spec(batch=True), sleep=lambda seconds: None)
    results = store.experiments.results(experiment_id)
    assert len(results) == 10 and all(r.batch for r in results)
    by_model = {m: [r for r in results if r.model == m] for m in MODELS}
    # The first model's batch expired; the second one's succeeded.
    assert {r.outcome for r in by_model[MODELS[0]]} == {"error"}
    assert all("expired" in (r.reason or "") for r in by_model[MODELS[0]])
    assert [r.score for r in by_model[MODELS[1]]] == [1.0] * 5
    assert len(gemini_standin.requests("batch", action="batches.create")) == 2
    assert gemini_standin.requests("generate", action="generateContent") == []
    assert store.experiments.get(experiment_id).state == "done"


def test_thinking_tokens_are_counted_and_billed_as_output(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    gemini_standin.answer_with(tone_of)
    gemini_standin.think(40)
    spec = _spec(models=("gemini-2.5-flash",))
    thinking = store.experiments.results(_run(runner, spec))
    assert {(r.thinking_tokens, r.output_tokens) for r in thinking if r.answer == "negative"} == {(40, 41)}
    # A budget of 0 turns thinking off, and a budget caps it.
    off = store.experiments.results(
        _run(runner, _spec(models=("gemini-2.5-flash",), generation=Generation(thinking_budget=0)))
    )
    assert {r.thinking_tokens for r in off} == {0}
    capped = store.experiments.results(
        _run(runner, _spec(models=("gemini-2.5-flash",), generation=Generation(thinking_budget=16)))
    )
    assert {r.thinking_tokens for r in capped} == {16}


def test_a_batch_experiment_is_judged_afterwards_many_at_a_time(
    runner: ExperimentRunner, gemini_standin: GeminiStandIn, store: Store
) -> None:
    def answer(prompt: Prompt) -> str:
        if prompt.model == "gemini-2.5-pro":
            good = "Positive" in prompt.last_user_text or "negative" in prompt.last_user_text
            return json.dumps({"score": 5 if good else 2, "reason": "matches" if good else "off"})
        return tone_of(prompt)

    gemini_standin.answer_with(answer)
    gemini_standin.batch_progress(pending_gets=1, running_gets=1)
    quick = ExperimentRunner(
        store,
        runner.settings.model_copy(update={"batch_poll_seconds": 0.01}),
        runner.gemini,
        flush_every=0.05,
    )
    judged = Scoring.parse("judge:Is the tone right?", expected="expected", judge_model="gemini-2.5-pro")
    spec = _spec(models=("gemini-2.5-flash-lite",), scoring=judged, batch=True)
    experiment_id = _run(quick, spec, sleep=lambda seconds: None)
    results = store.experiments.results(experiment_id)
    assert [r.score for r in results] == [5.0, 5.0, 2.0, 5.0, 5.0] and all(r.batch for r in results)
    assert all(r.judge_reason in ("matches", "off") and r.judge_input_tokens > 0 for r in results)
    asked = gemini_standin.requests("generate", action="generateContent")
    assert len(asked) == 5 and all("gemini-2.5-pro" in r.path for r in asked)
