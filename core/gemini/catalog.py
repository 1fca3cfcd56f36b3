"""The models the API key can use (`models.list`, every page), as plain records."""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

from core.gemini.client import GeminiClient

PAGE_SIZE = 50


@dataclass(frozen=True)
class ModelInfo:
    """One model: its name without the "models/" prefix and what it supports."""

    name: str
    display_name: str
    description: str
    methods: tuple[str, ...]
    input_token_limit: int | None
    output_token_limit: int | None


def _info(model: types.Model) -> ModelInfo:
    name = (model.name or "").removeprefix("models/")
    return ModelInfo(
        name=name,
        display_name=model.display_name or name,
        description=model.description or "",
        methods=tuple(model.supported_actions or ()),
        input_token_limit=model.input_token_limit,
        output_token_limit=model.output_token_limit,
    )


def list_models(client: GeminiClient, *, page_size: int = PAGE_SIZE) -> list[ModelInfo]:
    """Every model the key can use, in the API's order, following `nextPageToken` to the end."""
    sdk = client.sdk
    # The pager fetches the next page while it is iterated, so the whole walk runs under `call`.
    models = client.call(lambda: list(sdk.models.list(config=types.ListModelsConfig(page_size=page_size))))
    return [_info(m) for m in models]
