"""What an experiment would take before anything is sent: requests, tokens and cost, per model.

Input tokens are counted by Gemini (`countTokens`, which is not charged) on up to SAMPLE prompts
per model, spread over the table, and scaled to its rows; output tokens cannot be counted before
the answers exist, so they are assumed: the cap when --max-output-tokens is set, else OUTPUT_GUESS.
Requests the response cache already answers cost nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from core.experiments.cases import Cases
from core.experiments.checks import check_experiment
from core.experiments.pricing import Prices
from core.experiments.spec import ExperimentSpec, request_key
from core.gemini.client import GeminiClient
from core.store import Store

#: Output tokens a request is assumed to spend when --max-output-tokens is not set.
OUTPUT_GUESS = 300
#: Prompts per model whose tokens are counted.
SAMPLE = 5


@dataclass(frozen=True)
class ModelEstimate:
    """What running one model would take: requests (and how many the cache answers), tokens, cost."""

    model: str
    requests: int
    cached: int
    input_tokens: int
    output_tokens: int
    cost: float | None


@dataclass(frozen=True)
class Estimate:
    """A dry run: per model, plus the judge's requests; `output_guess` is the output tokens a request
    was assumed to spend, a bound when `output_capped` (it is the --max-output-tokens cap), a
    guess otherwise."""

    models: tuple[ModelEstimate, ...]
    judge_requests: int
    output_guess: int
    output_capped: bool = False

    @property
    def requests(self) -> int:
        return sum(m.requests - m.cached for m in self.models) + self.judge_requests

    @property
    def cost(self) -> float | None:
        costs = [m.cost for m in self.models]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)


def estimate(
    client: GeminiClient, store: Store, prices: Prices, spec: ExperimentSpec, cases: Cases, *, source: str
) -> Estimate:
    """Requests, tokens and cost of running `spec` over `cases` (checked first, as a run is)."""
    template = check_experiment(spec, cases, source=source)
    prompts = [template.render(row) for row in cases.rows]
    output = spec.generation.max_output_tokens or OUTPUT_GUESS
    found = []
    for model in spec.models:
        keys = [request_key(model, spec.generation, p) for p in prompts]
        cached = len(store.experiments.cached(keys))
        asked = len(prompts) - cached
        per_prompt = _sample_tokens(client, model, spec, prompts) if asked else 0.0
        tokens_in, tokens_out = round(per_prompt * asked), output * asked
        cost = prices.cost(model, tokens_in, tokens_out, batch=spec.batch)
        found.append(ModelEstimate(model, len(prompts), cached, tokens_in, tokens_out, cost))
    judging = spec.scoring.mode == "judge"
    return Estimate(
        models=tuple(found),
        judge_requests=sum(m.requests - m.cached for m in found) if judging else 0,
        output_guess=output,
        output_capped=spec.generation.max_output_tokens is not None,
    )


def _sample_tokens(client: GeminiClient, model: str, spec: ExperimentSpec, prompts: Sequence[str]) -> float:
    step = max(1, len(prompts) // SAMPLE)
    sample = list(prompts[::step][:SAMPLE])
    system = spec.generation.system or ""
    sdk = client.sdk
    counts = []
    for prompt in sample:
        # countTokens takes no system instruction on the Gemini API: count it with the prompt.
        text = f"{system}\n\n{prompt}" if system else prompt
        count = functools.partial(sdk.models.count_tokens, model=model, contents=text)
        response = client.call(count, model=model, metered=False)
        counts.append(response.total_tokens or 0)
    return sum(counts) / len(counts)
