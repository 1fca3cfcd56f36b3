"""Grading one answer against its row's right answer: exact, contains, regex:PATTERN or json:FIELD.

Pure functions over strings, called only for answers (refusals, safety stops and errors are counted
apart and never graded). Every mode but the judge's gives 1.0 (right) or 0.0 (wrong); a row whose
`expected` cell is missing or blank gives None (not graded): there is nothing to compare with.

- `exact`: the normalised answer equals the normalised expected value. Normalising applies
  Unicode NFKC, casefolds, collapses whitespace and strips surrounding sentence punctuation,
  quotes and markdown emphasis, so `**Positive.**` equals `positive`; inner characters count.
- `contains`: the normalised expected value occurs in the normalised answer.
- `regex:PATTERN`: the pattern is searched (`re.search`) in the answer as written, its first
  `MAX_REGEX_CHARS` characters only. `{expected}` in the pattern stands for the row's expected
  value as a literal (escaped), so `regex:\\b{expected}\\b` asks for it as a whole word. A pattern
  without a group passes when it is found at all; with groups, the first group's text must equal
  the expected value (both normalised), so `regex:Answer:\\s*(\\w+)` extracts and compares. Case
  matters unless the pattern says `(?i)`. Python's `re` has no time limit: the length cap bounds
  the work a badly written pattern (`(a+)+$`) can do on a long answer, and patterns belong to the
  experiment's author, who should avoid nested repeats. A pattern that no longer compiles once
  `{expected}` is filled in raises InvalidInput.
- `json:FIELD`: the answer is parsed as JSON (a ```json fence around it is tolerated), FIELD is a
  dotted path (`a.b`, with numbers indexing lists: `items.0.label`), and its value is compared
  normalised to the expected value (numbers by value: 3 equals "3.0"). An answer that is not JSON
  or lacks the field scores 0.0: it is the model's wrong answer, not a refusal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.errors import InvalidInput
from core.experiments.spec import Scoring

#: The answer's characters a regex sees: a bound on the backtracking a pattern can do.
MAX_REGEX_CHARS = 10_000
#: Characters stripped from both ends: sentence punctuation, quotes, markdown emphasis/code marks.
STRIPPED = ".,;:!?…¡¿。、，；：！？\"'`´‘’‚‛“”„‟«»‹›「」『』*_~"
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?```\s*$", re.DOTALL)
_EXPECTED = "{expected}"


def normalise(text: str) -> str:
    """`text` compared as a person would: NFKC, casefolded, whitespace collapsed, and surrounding
    punctuation, quotes and markdown emphasis stripped (repeatedly, so `"*Yes*."` is `yes`)."""
    # NFKC again after casefolding: folding can undo it (Unicode's NFKC_Casefold does the same).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    flat = " ".join(folded.split())
    while True:
        stripped = flat.strip(STRIPPED).strip()
        if stripped == flat:
            return flat
        flat = stripped


def score(scoring: Scoring, answer: str, row: Mapping[str, str]) -> float | None:
    """1.0 or 0.0 for `answer` against the row's expected value under `scoring` (see the module
    doc); None for mode `none`, for the judge (graded by `core.experiments.judge`) and for a row
    without an expected value."""
    if scoring.mode in ("none", "judge"):
        return None
    expected = row.get(scoring.expected or "")
    if expected is None or not expected.strip():
        return None
    if scoring.mode == "exact":
        right = normalise(answer) == normalise(expected)
    elif scoring.mode == "contains":
        right = normalise(expected) in normalise(answer)
    elif scoring.mode == "regex":
        right = _regex(scoring.argument or "", answer, expected)
    else:
        right = _json_field(scoring.argument or "", answer, expected)
    return 1.0 if right else 0.0


def _regex(pattern: str, answer: str, expected: str) -> bool:
    try:
        compiled = re.compile(pattern.replace(_EXPECTED, re.escape(expected)))
    except re.error as exc:  # {expected} where a literal cannot go, as in a group's name
        raise InvalidInput(
            f"--score regex: with {_EXPECTED} filled in, the pattern does not compile ({exc})"
        ) from None
    found = compiled.search(answer[:MAX_REGEX_CHARS])
    if found is None:
        return False
    if compiled.groups == 0:
        return True
    return normalise(found.group(1) or "") == normalise(expected)


def _json_field(path: str, answer: str, expected: str) -> bool:
    fenced = _FENCE.match(answer)
    try:
        value: Any = json.loads(fenced.group(1) if fenced else answer)
    except ValueError:
        return False
    for key in path.strip().split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False
    return _same_value(value, expected)


def _same_value(value: Any, expected: str) -> bool:
    if isinstance(value, str):
        return normalise(value) == normalise(expected)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Decimal compares by value without float's rounding: 3 is "3.0", and 400 digits stay exact.
        try:
            return Decimal(str(value)) == Decimal(expected.strip())
        except ArithmeticError:  # not a number, or a signalling NaN
            return False
    # true/false/null, lists and objects: compared as the JSON they are written as.
    return normalise(json.dumps(value, ensure_ascii=False)) == normalise(expected)
