"""Everything an experiment is checked for before a single request is sent.

Each check raises `InvalidInput` with one line naming what is wrong: a placeholder or an
`--expected` column the table lacks, a response schema that is not valid JSON Schema, a model
the API key cannot use (checked against `models.list`), a score mode without its column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsonschema

from core.errors import InvalidInput
from core.experiments.cases import Cases, Template
from core.experiments.spec import ExperimentSpec
from core.gemini.catalog import ModelInfo

GENERATE = "generateContent"


def check_experiment(spec: ExperimentSpec, cases: Cases, *, source: str) -> Template:
    """The template, checked against the table, with the scoring's column and the schema."""
    template = Template(spec.template)
    template.check(cases.columns, source=source)
    expected = spec.scoring.expected
    if expected and expected not in cases.columns:
        raise InvalidInput(
            f"--expected {expected!r} is not a column of {source} (its columns: {', '.join(cases.columns)})"
        )
    if spec.generation.response_schema is not None:
        check_schema(spec.generation.response_schema)
    return template


def read_schema(text: str, *, source: str) -> dict[str, Any]:
    """A response schema from the text of a JSON file, checked (`check_schema`)."""
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{source} is not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(schema, dict):
        raise InvalidInput(f"{source} must hold a JSON Schema object, not a {type(schema).__name__}")
    check_schema(schema)
    return schema


def check_schema(schema: dict[str, Any]) -> None:
    """InvalidInput unless `schema` is a valid JSON Schema (draft 2020-12) for an object or value."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise InvalidInput(
            f"the response schema is not valid JSON Schema at {where}: {exc.message}"
        ) from None


def check_models(models: Sequence[str], available: Sequence[ModelInfo]) -> None:
    """InvalidInput naming every model the API key cannot use to generate (from `models.list`)."""
    known = {m.name: m for m in available}
    unknown = [name for name in models if name.removeprefix("models/") not in known]
    if unknown:
        generating = sorted(m.name for m in available if GENERATE in m.methods)
        hint = f"; models that generate: {', '.join(generating[:8])}" if generating else ""
        raise InvalidInput(f"unknown model {', '.join(unknown)} (not in models.list for this API key){hint}")
    unable = [name for name in models if GENERATE not in known[name.removeprefix("models/")].methods]
    if unable:
        raise InvalidInput(f"{', '.join(unable)} cannot generate text (it does not support {GENERATE})")
