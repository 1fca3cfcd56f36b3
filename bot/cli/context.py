"""What every command needs, built lazily: settings, the store, the engine."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from core.settings import Settings
from core.store import Store

if TYPE_CHECKING:
    from core.engine import Engine
    from core.gemini.client import GeminiClient


@dataclass
class Context:
    """Built once per invocation; nothing touches the database or loads a model until asked."""

    args: argparse.Namespace
    settings: Settings = field(default_factory=Settings.from_env)

    @cached_property
    def store(self) -> Store:
        # Every command migrates on first use, so a new user never has to run `db upgrade` first.
        return Store.open(self.settings.database_url, migrate=True)

    @cached_property
    def engine(self) -> Engine:
        # Imported here: scikit-learn and friends cost seconds that `labels list` should not pay.
        from core.embeddings.factory import make_embedder
        from core.engine import Engine

        gemini = self.gemini
        return Engine(
            store=self.store,
            embedder=make_embedder(self.settings, gemini=gemini),
            settings=self.settings,
            gemini=gemini,
        )

    @cached_property
    def gemini(self) -> GeminiClient | None:
        """One Gemini client for the invocation, None without a key (escalation is then off)."""
        if not self.settings.gemini_api_key:
            return None
        from core.gemini.client import GeminiClient  # google-genai costs most of a second to import

        return GeminiClient.from_settings(self.settings)

    @property
    def team(self) -> str:
        return str(getattr(self.args, "team", None) or self.settings.default_team)

    @property
    def set_name(self) -> str:
        return str(getattr(self.args, "set", None) or "default")
