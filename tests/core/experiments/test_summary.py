"""Per-model summaries: counts kept apart, intervals checked against published values, latency,
tokens and costs; and the comparison table."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.experiments.pricing import Prices
from core.experiments.spec import Scoring
from core.experiments.summary import (
    ModelSummary,
    comparison_json,
    comparison_table,
    score_text,
    summarise,
    t_interval,
    wilson_interval,
)
from core.store.experiments import ResultRecord
from tests.support import experiment_support

PRICES = Prices.parse(
    json.dumps(
        {
            "m-a": {"input": 1, "output": 2},
            "m-b": {"input": 3, "output": 4},
            "judge-m": {"input": 10, "output": 20},
        }
    )
)
EXACT = Scoring(mode="exact", expected="label")
JUDGED = Scoring(mode="judge", argument="Is it right?", judge_model="judge-m")


def result(model: str = "m-a", row: int = 0, outcome: str = "answered", **fields: object) -> ResultRecord:
    answer = "answer" if outcome == "answered" else ""
    values: dict[str, object] = {"prompt": f"prompt {row}", "answer": answer, "reason": None}
    return experiment_support.result(model=model, row_index=row, outcome=outcome, **{**values, **fields})


# -- intervals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
        # method 3 (Wilson score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(successes: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_at_the_edges_has_its_closed_form() -> None:
    z2 = 1.959963984540054**2
    # All wrong: [0, z²/(n+z²)]; all right: [n/(n+z²), 1].
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0))


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_share_and_stays_in_0_1(case: tuple[int, int]) -> None:
    successes, n = case
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0
    assert high - low > 0


def test_t_interval_matches_a_hand_computation() -> None:
    # Grades 1..5: mean 3, s = √2.5, se = s/√5 = 0.7071; t(0.975, 4 df) = 2.7764 (t table).
    low, high = t_interval([1, 2, 3, 4, 5])
    assert (low, high) == pytest.approx((3 - 2.7764 * 0.70711, 3 + 2.7764 * 0.70711), abs=1e-3)
    # Grades 2, 3, 3, 4: mean 3, s = 0.8165, se = 0.40825; t(0.975, 3 df) = 3.1824.
    assert t_interval([2, 3, 3, 4]) == pytest.approx((3 - 3.1824 * 0.40825, 3 + 3.1824 * 0.40825), abs=1e-3)


def test_t_interval_stays_on_the_scale() -> None:
    assert t_interval([4, 5, 5, 5, 5])[1] == 5.0
    assert t_interval([1, 1, 2])[0] == 1.0
    assert t_interval([4]) == (1.0, 5.0)  # one grade says nothing about the spread
    assert t_interval([]) == (1.0, 5.0)


# -- summaries -------------------------------------------------------------------------------------


def test_outcomes_are_counted_apart_and_only_answers_are_scored() -> None:
    rows = [
        result(row=0, score=1.0),
        result(row=1, score=0.0),
        result(row=2, score=1.0),
        result(row=3, score=1.0, cached=True),
        result(row=4, outcome="refused", reason="SAFETY"),
        result(row=5, outcome="stopped", reason="RECITATION"),
        result(row=6, outcome="error", reason="quota"),
        result(row=7, outcome="error", reason="quota"),
        result(row=8, score=None),  # an answer whose row had no expected value
    ]
    (summary,) = summarise(rows, scoring=EXACT, prices=PRICES, models=["m-a"])
    assert (summary.rows, summary.answered, summary.refused, summary.stopped, summary.errors) == (
        9,
        5,
        1,
        1,
        2,
    )
    assert summary.cached == 1
    assert (summary.scale, summary.scored, summary.score) == ("share", 4, 0.75)
    assert (summary.score_low, summary.score_high) == pytest.approx(wilson_interval(3, 4))


def test_models_come_in_the_order_asked_then_any_others() -> None:
    rows = [result("m-b", score=1.0), result("zeta", score=0.0), result("alpha", score=0.0)]
    summaries = summarise(rows, scoring=EXACT, prices=PRICES, models=["m-a", "m-b"])
    assert [s.model for s in summaries] == ["m-a", "m-b", "alpha", "zeta"]
    empty = summaries[0]
    assert (empty.rows, empty.scored, empty.score, empty.latency_p50_ms, empty.cost) == (
        0,
        0,
        None,
        None,
        0.0,
    )


def test_no_scoring_shows_no_score_even_if_rows_carry_one() -> None:
    (summary,) = summarise([result(score=1.0)], scoring=Scoring(), prices=PRICES, models=["m-a"])
    assert (summary.scale, summary.score, summary.score_low) == (None, None, None)
    assert score_text(summary) == "-"


def test_judged_scores_are_a_mean_on_the_five_point_scale() -> None:
    rows = [result(row=i, score=float(g)) for i, g in enumerate([3, 4, 4, 5])]
    (summary,) = summarise(rows, scoring=JUDGED, prices=PRICES, models=["m-a"])
    assert (summary.scale, summary.score) == ("judge", 4.0)
    assert (summary.score_low, summary.score_high) == pytest.approx((2.70, 5.0), abs=0.01)


def test_latency_percentiles_leave_errors_out_and_keep_cached_rows() -> None:
    rows = [
        result(row=0, latency_ms=100.0),
        result(row=1, latency_ms=200.0, outcome="refused"),
        result(row=2, latency_ms=300.0, outcome="stopped"),
        result(row=3, latency_ms=400.0, cached=True),
        result(row=4, latency_ms=60_000.0, outcome="error"),
    ]
    (summary,) = summarise(rows, scoring=EXACT, prices=PRICES, models=["m-a"])
    # Linear interpolation over 100, 200, 300, 400: p50 halfway between 200 and 300; p95 at
    # position 0.95 × 3 = 2.85, i.e. 300 + 0.85 × 100.
    assert summary.latency_p50_ms == pytest.approx(250.0)
    assert summary.latency_p95_ms == pytest.approx(385.0)


def test_tokens_and_costs() -> None:
    rows = [
        result(row=0, input_tokens=1_000, output_tokens=500, thinking_tokens=200),
        result(row=1, input_tokens=1_000, output_tokens=500, batch=True),
        result(row=2, input_tokens=2_000, output_tokens=1_000, cached=True),
        result(row=3, outcome="error"),
    ]
    (summary,) = summarise(rows, scoring=EXACT, prices=PRICES, models=["m-a"])
    assert (summary.input_tokens, summary.output_tokens, summary.thinking_tokens) == (4_000, 2_000, 200)
    # m-a: $1/M in, $2/M out. Row 0: 0.001 + 0.001; row 1 (batch): half of that; row 2: 0.002 + 0.002.
    assert summary.cost == pytest.approx(0.002 + 0.001 + 0.004)
    assert summary.paid == pytest.approx(0.002 + 0.001)  # the cached answer cost nothing this time
    assert summary.judge_cost == 0.0


def test_judge_tokens_are_priced_at_the_judge_model_and_paid_every_time() -> None:
    rows = [
        result(row=0, input_tokens=1_000, score=4.0, judge_input_tokens=300, judge_output_tokens=50),
        result(
            row=1, input_tokens=1_000, score=2.0, judge_input_tokens=300, judge_output_tokens=50, cached=True
        ),
    ]
    (summary,) = summarise(rows, scoring=JUDGED, prices=PRICES, models=["m-a"])
    # judge-m: $10/M in, $20/M out → 2 × (0.003 + 0.001)
    assert summary.judge_cost == pytest.approx(0.008)
    assert summary.cost == pytest.approx(0.002)
    assert summary.paid == pytest.approx(0.001 + 0.008)
    assert (summary.judge_input_tokens, summary.judge_output_tokens) == (600, 100)


def test_an_unknown_price_gives_no_cost_rather_than_a_wrong_one() -> None:
    rows = [result("mystery", input_tokens=10), result("mystery", row=1, input_tokens=10, cached=True)]
    (summary,) = summarise(rows, scoring=EXACT, prices=PRICES, models=["mystery"])
    assert (summary.cost, summary.paid) == (None, None)
    judged = summarise(
        [result(score=3.0, judge_input_tokens=5)],
        scoring=replace(JUDGED, judge_model="mystery-judge"),
        prices=PRICES,
        models=["m-a"],
    )[0]
    assert (judged.judge_cost, judged.paid) == (None, None)
    assert judged.cost == 0.0


def test_to_json_is_plain_json() -> None:
    (summary,) = summarise([result(score=1.0)], scoring=EXACT, prices=PRICES, models=["m-a"])
    data = json.loads(json.dumps(summary.to_json()))
    assert data["model"] == "m-a" and data["score"] == 1.0 and data["scale"] == "share"
    assert set(data) >= {
        "score_low",
        "score_high",
        "latency_p50_ms",
        "latency_p95_ms",
        "cost",
        "judge_cost",
        "paid",
    }


def test_comparison_json_labels_each_summary() -> None:
    (summary,) = summarise([result(score=1.0)], scoring=EXACT, prices=PRICES, models=["m-a"])
    data = json.loads(json.dumps(comparison_json([("#3", summary), ("#4", summary)])))
    assert [(row["experiment"], row["model"]) for row in data] == [("#3", "m-a"), ("#4", "m-a")]


# -- the table -------------------------------------------------------------------------------------


def summary_of(model: str, rows: list[ResultRecord], scoring: Scoring = EXACT) -> ModelSummary:
    return summarise(rows, scoring=scoring, prices=PRICES, models=[model])[0]


def test_comparison_table() -> None:
    share = summary_of(
        "m-a",
        [result(row=i, score=float(i < 8), input_tokens=12_345, latency_ms=850.0) for i in range(10)]
        + [result(row=10, outcome="refused"), result(row=11, outcome="error")],
    )
    judged = summary_of(
        "m-b",
        [
            result("m-b", row=i, score=float(g), latency_ms=1500.0, judge_input_tokens=1_000)
            for i, g in enumerate([3, 4, 5])
        ],
        JUDGED,
    )
    unknown = summary_of("mystery", [result("mystery", input_tokens=5)])
    table = comparison_table([("#1", share), ("#2", judged), ("", unknown)])
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["experiment/model", "score"]
    assert set(lines[1]) == {"-", " "}
    first, second, third = lines[2:5]
    assert first.startswith("#1/m-a ")
    assert "80% (49%–94%) n=10" in first  # Wilson 8/10: 0.4902–0.9433
    assert first.split()[-8:-5] == ["1", "0", "1"]  # refused, stopped, errors
    assert "850ms" in first and "123,450" in first
    assert second.startswith("#2/m-b ") and "4.00/5 (1.52–5.00) n=3" in second and "1.50s" in second
    assert third.startswith("mystery ") and third.endswith("?")
    # Fixed width: the right-aligned columns end in the same place on every line.
    assert len({len(line) for line in lines[:5]}) == 1
    assert lines[5] == "judge: $0.0300"  # 3 × 1,000 tokens at $10/M
    assert lines[6] == "paid (cached answers free, judge included): ?"  # mystery's price is unknown


def test_comparison_table_cleans_names() -> None:
    summary = summary_of("m-a", [result(score=1.0)])
    table = comparison_table([("run ```with``` backticks\nand a line break " + "x" * 80, summary)])
    assert "`" not in table
    data_line = table.splitlines()[2]
    assert data_line.startswith("run '''with''' backticks and a line break x")
    assert "…" in data_line


def test_comparison_table_says_what_was_paid_when_the_cache_served_answers() -> None:
    summary = summary_of(
        "m-a", [result(input_tokens=1_000_000), result(row=1, input_tokens=1_000_000, cached=True)]
    )
    table = comparison_table([("", summary)])
    assert "$2.00" in table.splitlines()[2]
    assert table.splitlines()[-1] == "paid (cached answers free, judge included): $1.00"
    fresh = summary_of("m-a", [result(input_tokens=1_000_000)])
    assert "paid" not in comparison_table([("", fresh)])
