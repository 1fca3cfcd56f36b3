"""Per-model figures of an experiment's results, and the table `show` and `compare` print.

Counts: rows, answers, refusals, safety stops, errors and rows served from the response cache.
Refusals, stops and errors are never graded, so the score is over the graded answers only.

- Score, with a 95% confidence interval. Modes graded right/wrong (exact, contains, regex, json)
  give the share right with a Wilson score interval: unlike the normal approximation it stays
  within [0, 1] and is still sensible at 0 or n right out of n, which small experiments often
  are. The judge's 1–5 grades give their mean with a Student t interval (n − 1 degrees of
  freedom), clipped to [1, 5]; a single grade gives the whole scale. The t interval assumes
  little about grades of a small experiment and needs no random draws, so the same results
  always print the same interval; it is zero wide when every grade is the same.
- Latency p50 / p95 (numpy's linear interpolation) over the requests Gemini answered, refused
  or stopped; errors are left out (a timeout is not the model's speed). Rows from the cache are
  included with the latency they had when they were asked: that is the model's latency.
- Tokens, summed over every row: what the answers cost whether or not this run paid for them.
- Cost, in USD at `core.experiments.pricing`: `cost` is the answers' tokens at the model's price
  (batch rows at half), what the model costs for this experiment; `judge_cost` is the judge's
  tokens at the judge model's price, kept apart because it grades every model alike; `paid` is
  what this run spent: the answers not served from the cache, plus the judge. None where a
  model's price is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from core.experiments.pricing import Prices
from core.experiments.spec import Scoring
from core.store.experiments import ResultRecord

#: A score's scale: the share right (0/1 grades) or the judge's 1–5 mean.
Scale = Literal["share", "judge"]
#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: The model column of the table is cut to this many characters.
MAX_NAME_CHARS = 48
_ANSWERED_BY_GEMINI = ("answered", "refused", "stopped")


@dataclass(frozen=True)
class ModelSummary:
    """One model's figures in one experiment (see the module doc for what each means)."""

    model: str
    rows: int
    answered: int
    refused: int
    stopped: int
    errors: int
    cached: int
    scale: Scale | None
    scored: int
    score: float | None
    score_low: float | None
    score_high: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    judge_input_tokens: int
    judge_output_tokens: int
    cost: float | None
    judge_cost: float | None
    paid: float | None

    def to_json(self) -> dict[str, Any]:
        """The figures as plain JSON (for `--json`)."""
        return asdict(self)


def wilson_interval(successes: float, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a share of `successes` out of `n` (n ≥ 1)."""
    if n < 1:
        raise ValueError("a Wilson interval needs at least one trial")
    share = successes / n
    spread = z * z / n
    centre = (share + spread / 2) / (1 + spread)
    half = z / (1 + spread) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    # At 0 or n successes one end is exactly 0 or 1; the formula gets there only up to rounding.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def t_interval(values: Sequence[float], *, low: float = 1.0, high: float = 5.0) -> tuple[float, float]:
    """The 95% Student t interval of the mean of `values`, clipped to [low, high]; the whole
    scale for a single value."""
    if len(values) < 2:
        return low, high
    # Imported here: scipy.stats takes a while to load and only judged experiments need it.
    from scipy.stats import t

    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    half = float(t.ppf(0.975, len(array) - 1)) * float(array.std(ddof=1)) / math.sqrt(len(array))
    return max(low, mean - half), min(high, mean + half)


def summarise(
    results: Iterable[ResultRecord], *, scoring: Scoring, prices: Prices, models: Sequence[str]
) -> list[ModelSummary]:
    """One summary for each of `models`, in that order (a model without results gets zeros), then
    any other model found in `results`, by name."""
    by_model: dict[str, list[ResultRecord]] = {model: [] for model in models}
    for result in results:
        by_model.setdefault(result.model, []).append(result)
    order = list(models) + sorted(set(by_model) - set(models))
    return [_summary(model, by_model[model], scoring=scoring, prices=prices) for model in order]


def _summary(model: str, rows: list[ResultRecord], *, scoring: Scoring, prices: Prices) -> ModelSummary:
    count = {
        outcome: sum(r.outcome == outcome for r in rows) for outcome in ("answered", "refused", "stopped")
    }
    scale: Scale | None = None if scoring.mode == "none" else "judge" if scoring.mode == "judge" else "share"
    grades = [r.score for r in rows if r.outcome == "answered" and r.score is not None]
    score = low = high = None
    if scale is not None and grades:
        score = sum(grades) / len(grades)
        low, high = t_interval(grades) if scale == "judge" else wilson_interval(sum(grades), len(grades))
    latencies = [r.latency_ms for r in rows if r.outcome in _ANSWERED_BY_GEMINI]
    p50 = p95 = None
    if latencies:
        p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95]))
    cost = _cost(prices, model, rows)
    judge_cost: float | None = 0.0
    if scoring.mode == "judge":
        judge_cost = _sum(
            prices.cost(scoring.judge_model or "", r.judge_input_tokens, r.judge_output_tokens)
            for r in rows
            if r.judge_input_tokens or r.judge_output_tokens
        )
    fresh = _cost(prices, model, [r for r in rows if not r.cached])
    return ModelSummary(
        model=model,
        rows=len(rows),
        answered=count["answered"],
        refused=count["refused"],
        stopped=count["stopped"],
        errors=len(rows) - sum(count.values()),
        cached=sum(r.cached for r in rows),
        scale=scale,
        scored=len(grades),
        score=score,
        score_low=low,
        score_high=high,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        thinking_tokens=sum(r.thinking_tokens for r in rows),
        judge_input_tokens=sum(r.judge_input_tokens for r in rows),
        judge_output_tokens=sum(r.judge_output_tokens for r in rows),
        cost=cost,
        judge_cost=judge_cost,
        paid=None if fresh is None or judge_cost is None else fresh + judge_cost,
    )


def _cost(prices: Prices, model: str, rows: Sequence[ResultRecord]) -> float | None:
    return _sum(prices.cost(model, r.input_tokens, r.output_tokens, batch=r.batch) for r in rows)


def _sum(costs: Iterable[float | None]) -> float | None:
    """The sum, None when any part is unknown (an empty sum is 0)."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


def comparison_json(rows: Sequence[tuple[str, ModelSummary]]) -> list[dict[str, Any]]:
    """The rows of `comparison_table` as plain JSON (for `--json`), each with its experiment label."""
    return [{"experiment": label, **summary.to_json()} for label, summary in rows]


# -- the table ------------------------------------------------------------------------------------

_HEADERS = (
    "experiment/model",
    "score (95% CI)",
    "refused",
    "stopped",
    "errors",
    "p50",
    "p95",
    "in tok",
    "out tok",
    "cost",
)


def comparison_table(rows: Sequence[tuple[str, ModelSummary]]) -> str:
    """A fixed-width table, one line per (experiment label, summary), for a terminal or a Slack code
    block; a line under it adds the judge's cost and what the runs paid when they differ from
    the table's cost. An empty label names the model alone."""
    lines = [_HEADERS]
    for label, summary in rows:
        name = f"{label}/{summary.model}" if label else summary.model
        lines.append(
            (
                _clean(name),
                score_text(summary),
                f"{summary.refused:,}",
                f"{summary.stopped:,}",
                f"{summary.errors:,}",
                _latency(summary.latency_p50_ms),
                _latency(summary.latency_p95_ms),
                f"{summary.input_tokens:,}",
                f"{summary.output_tokens:,}",
                money(summary.cost),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADERS))]
    text = [
        "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    summaries = [summary for _, summary in rows]
    judged = _sum(s.judge_cost for s in summaries)
    if judged is None or judged > 0:
        text.append(f"judge: {money(judged)}")
    paid = _sum(s.paid for s in summaries)
    if paid != _sum(s.cost for s in summaries) or judged != 0:
        text.append(f"paid (cached answers free, judge included): {money(paid)}")
    return "\n".join(text) + "\n"


def score_text(summary: ModelSummary) -> str:
    """`83% (71%–91%) n=40` for a share right, `4.20/5 (3.85–4.55) n=40` for a judge's mean (n:
    the graded answers), `-` when nothing was graded."""
    if summary.score is None or summary.score_low is None or summary.score_high is None:
        return "-"
    if summary.scale == "judge":
        return (
            f"{summary.score:.2f}/5 ({summary.score_low:.2f}–{summary.score_high:.2f}) n={summary.scored:,}"
        )
    return f"{summary.score:.0%} ({summary.score_low:.0%}–{summary.score_high:.0%}) n={summary.scored:,}"


def money(usd: float | None) -> str:
    """USD for the table: `$0.0123` under a dollar, `$12.34` above, `?` when unknown."""
    if usd is None:
        return "?"
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def _latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f}s" if ms >= 1000 else f"{ms:.0f}ms"


def _clean(name: str) -> str:
    # One line, no backticks (they would end a Slack code block), bounded.
    flat = " ".join(name.replace("`", "'").split())
    return flat if len(flat) <= MAX_NAME_CHARS else flat[: MAX_NAME_CHARS - 1] + "…"
