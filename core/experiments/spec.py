"""An experiment's locked configuration: everything that decides what is sent to Gemini.

A spec is stored with its experiment as JSON and read back field for field, so `rerun` repeats
exactly what ran: the template, the models, the system instruction, every generation setting,
the response schema, the scoring (with the judge's own configuration) and the google-genai
version that built the requests. `request_key` is the response cache's key: two requests with
the same model, generation settings and prompt are the same request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, Literal, get_args

from core.errors import InvalidInput
from core.gemini.generation import Options

ScoreMode = Literal["none", "exact", "contains", "regex", "json", "judge"]
SCORE_MODES: tuple[str, ...] = get_args(ScoreMode)
#: Version of the stored spec's shape; `of` refuses shapes it does not know.
SPEC_VERSION = 1
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def sdk_version() -> str:
    """The installed google-genai version, locked into every spec."""
    try:
        return metadata.version("google-genai")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


@dataclass(frozen=True)
class Generation:
    """The generation settings sent with every request (None: the model's default)."""

    system: str | None = None
    temperature: float | None = None
    seed: int | None = None
    max_output_tokens: int | None = None
    thinking_budget: int | None = None
    #: A JSON Schema the answer must follow (sent as `responseJsonSchema`, JSON output).
    response_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise InvalidInput(f"the temperature must be between 0 and 2, not {self.temperature:g}")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise InvalidInput("--max-output-tokens must be at least 1")
        if self.thinking_budget is not None and self.thinking_budget < -1:
            raise InvalidInput("--thinking-budget must be -1 (dynamic), 0 (off) or a number of tokens")


@dataclass(frozen=True)
class Scoring:
    """How answers are graded: against the `expected` column (exact, contains, regex:PATTERN,
    json:FIELD), or by a `judge` model with a rubric; `none` leaves them ungraded."""

    mode: ScoreMode = "none"
    expected: str | None = None
    #: The regex pattern, the JSON field, or the judge's rubric.
    argument: str | None = None
    judge_model: str | None = None
    #: The judge's own generation settings, locked like the experiment's.
    judge_generation: Generation = field(default_factory=lambda: Generation(temperature=0.0))

    def __post_init__(self) -> None:
        if self.mode not in SCORE_MODES:
            raise InvalidInput(
                f"unknown score mode {self.mode!r}; use exact, contains, regex:, json: or judge:"
            )
        if self.mode in ("exact", "contains", "regex", "json") and not self.expected:
            raise InvalidInput(f"--score {self.mode} needs --expected COLUMN, the column of right answers")
        if self.mode in ("regex", "json", "judge") and not (self.argument or "").strip():
            what = {"regex": "a pattern", "json": "a field name", "judge": "a rubric"}[self.mode]
            raise InvalidInput(f"--score {self.mode}: needs {what} after the colon")
        if self.mode == "regex":
            try:
                re.compile(self.argument or "")
            except re.error as exc:
                raise InvalidInput(f"--score regex: the pattern does not compile ({exc})") from None
        if self.mode == "judge" and not self.judge_model:
            raise InvalidInput("--score judge: needs a judge model")

    @classmethod
    def parse(cls, text: str | None, *, expected: str | None, judge_model: str | None) -> Scoring:
        """`exact`, `contains`, `regex:PATTERN`, `json:FIELD` or `judge:RUBRIC` (None: no scoring)."""
        if text is None or not text.strip():
            if expected:
                return cls(mode="exact", expected=expected)
            return cls()
        mode, colon, argument = text.partition(":")
        mode = mode.strip().lower()
        if mode not in SCORE_MODES or mode == "none":
            raise InvalidInput(
                f"unknown --score {text.strip()!r}; "
                "use exact, contains, regex:PATTERN, json:FIELD or judge:RUBRIC"
            )
        if mode in ("exact", "contains") and colon:
            raise InvalidInput(f"--score {mode} takes nothing after it")
        return cls(
            mode=mode,  # type: ignore[arg-type]  # checked against SCORE_MODES above
            expected=expected,
            argument=argument if colon else None,
            judge_model=judge_model if mode == "judge" else None,
        )


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment runs: `template` over every row, on each of `models`, graded by `scoring`."""

    template: str
    models: tuple[str, ...]
    generation: Generation = field(default_factory=Generation)
    scoring: Scoring = field(default_factory=Scoring)
    batch: bool = False
    sdk: str = field(default_factory=sdk_version)

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidInput("name at least one model (--model a,b)")
        for model in self.models:
            if not _MODEL_NAME.fullmatch(model):
                raise InvalidInput(f"{model!r} is not a model name")
        if len(set(self.models)) != len(self.models):
            raise InvalidInput("a model is named twice in --model")

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON, with its shape's version."""
        return {"v": SPEC_VERSION, **asdict(self), "models": list(self.models)}

    @classmethod
    def of(cls, data: dict[str, Any]) -> ExperimentSpec:
        """The spec `to_json` wrote; InvalidInput for a shape this version cannot read."""
        if data.get("v") != SPEC_VERSION:
            raise InvalidInput(
                f"this experiment was stored by another version of Gembot (spec v{data.get('v')})"
            )
        try:
            scoring = dict(data["scoring"])
            scoring["judge_generation"] = Generation(
                **scoring.get("judge_generation") or {"temperature": 0.0}
            )
            return cls(
                template=str(data["template"]),
                models=tuple(str(m) for m in data["models"]),
                generation=Generation(**data["generation"]),
                scoring=Scoring(**scoring),
                batch=bool(data.get("batch")),
                sdk=str(data.get("sdk") or "unknown"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"the stored experiment configuration is unreadable ({exc})") from None


def request_key(model: str, generation: Generation, prompt: str) -> str:
    """The response cache's key: sha256 over the model, the generation settings and the prompt.

    The SDK version is left out on purpose: the same request sent by a newer SDK is the same
    request to Gemini, and its cached answer is still the answer to it.
    """
    canonical = json.dumps(
        {"model": model.removeprefix("models/"), "generation": asdict(generation), "prompt": prompt},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def options_of(generation: Generation) -> Options:
    """The generation settings as `core.gemini.generation` options."""
    return Options(
        system_instruction=generation.system,
        temperature=generation.temperature,
        seed=generation.seed,
        max_output_tokens=generation.max_output_tokens,
        thinking_budget=generation.thinking_budget,
        response_schema=generation.response_schema,
    )
