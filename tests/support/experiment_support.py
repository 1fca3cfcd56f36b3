"""Results of prompt experiments for tests: one `ResultRecord` with plain defaults, changed by keyword."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.store import ResultRecord

_PLAIN = ResultRecord(
    model="m",
    row_index=0,
    prompt="prompt",
    outcome="answered",
    answer="answer",
    reason="STOP",
    score=None,
    judge_reason=None,
    input_tokens=0,
    output_tokens=0,
    thinking_tokens=0,
    judge_input_tokens=0,
    judge_output_tokens=0,
    latency_ms=100.0,
    cached=False,
    batch=False,
)


def result(**changes: Any) -> ResultRecord:
    """A stored result: answered, ungraded, free, 100 ms, but for what `changes` say."""
    return replace(_PLAIN, **changes)
