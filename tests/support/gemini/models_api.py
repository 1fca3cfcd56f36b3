"""`models.list` and `models.get`: the stand-in's model catalogue, and the 404 for a model that is
missing or cannot do what was asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.gemini.replies import ApiError, Reply, error, json_reply
from tests.support.gemini.wire import RecordedRequest, page

EMBEDDING_SIZE = 3072


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model catalogue, in the shape `models.list` returns it."""

    name: str  # without the "models/" prefix
    display_name: str
    methods: tuple[str, ...]
    input_token_limit: int
    output_token_limit: int
    embedding_size: int | None = None
    description: str = ""
    version: str = "001"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"models/{self.name}",
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description or self.display_name,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
        }
        if "generateContent" in self.methods:
            body.update(temperature=1, topP=0.95, topK=64, maxTemperature=2)
        if self.name.startswith("gemini-2.5"):
            body["thinking"] = True
        return body


_GENERATE = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
_EMBED = ("embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent")
MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gemini-2.5-flash", "Gemini 2.5 Flash", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.5-pro", "Gemini 2.5 Pro", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-2.0-flash", "Gemini 2.0 Flash", _GENERATE, 1_048_576, 8_192),
    ModelInfo("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite", _GENERATE, 1_048_576, 8_192),
    ModelInfo("gemini-flash-latest", "Gemini Flash Latest", _GENERATE, 1_048_576, 65_536),
    ModelInfo("gemini-embedding-001", "Gemini Embedding 001", _EMBED, 2_048, 1, EMBEDDING_SIZE),
    ModelInfo("text-embedding-004", "Text Embedding 004", ("embedContent",), 2_048, 1, 768, version="004"),
)


def find_model(models: dict[str, ModelInfo], record: RecordedRequest, call: str | None = None) -> ModelInfo:
    """The model the request names, able to serve `call` ("generateContent" or "batchEmbedContents",
    as Google's 404 names them); a 404 `ApiError` otherwise."""
    model = models.get(record.model or "")
    if model is None or (call is not None and _NEEDS[call] not in model.methods):
        suffix = f", or is not supported for {call}" if call else ""
        raise ApiError(
            error(
                404,
                f"models/{record.model} is not found for API version {record.api_version}{suffix}. "
                "Call ListModels to see the list of available models and their supported methods.",
            )
        )
    return model


# The catalogue method a call needs: the catalogue lists embedContent, never batchEmbedContents.
_NEEDS = {"generateContent": "generateContent", "batchEmbedContents": "embedContent"}


def list_models(models: dict[str, ModelInfo], record: RecordedRequest) -> Reply:
    """`GET models`: one page of the catalogue."""
    return page(record, "models", [m.to_json() for m in models.values()], default=50, maximum=1000)


def get_model(models: dict[str, ModelInfo], record: RecordedRequest) -> Reply:
    """`GET models/NAME`."""
    return json_reply(200, find_model(models, record).to_json())
