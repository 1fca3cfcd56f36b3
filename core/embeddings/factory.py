"""Picks the embedder the settings ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.embeddings.base import Embedder
from core.settings import Settings

if TYPE_CHECKING:
    from core.gemini.client import GeminiClient


def make_embedder(settings: Settings, *, gemini: GeminiClient | None = None) -> Embedder:
    """The configured embedder: `local` (MiniLM on this machine) or `gemini` (the API).

    `gemini` is the process's Gemini client, shared so that there is one per process; without
    it the Gemini embedder builds its own.
    """
    if settings.embedder == "gemini":
        from core.gemini.embedder import GeminiEmbedder  # google-genai costs most of a second to import

        return GeminiEmbedder.from_settings(settings, client=gemini)
    from core.embeddings.local import LocalEmbedder

    return LocalEmbedder()
