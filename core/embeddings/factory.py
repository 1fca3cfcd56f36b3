"""Picks the embedder the settings ask for."""

from __future__ import annotations

from core.embeddings.base import Embedder
from core.settings import Settings


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder: `local` (MiniLM on this machine) or `gemini` (the API)."""
    if settings.embedder == "gemini":
        from core.gemini.embedder import GeminiEmbedder  # the Gemini embedder arrives with its client

        return GeminiEmbedder.from_settings(settings)
    from core.embeddings.local import LocalEmbedder

    return LocalEmbedder()
