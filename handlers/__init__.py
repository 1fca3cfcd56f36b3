"""Slack surfaces: one module per surface, each with `register(app, deps)`.

Handlers translate a Slack payload into a `core` call and its result into a reply; the words and
the Block Kit live here, the work in `core`. This package never imports `bot`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from handlers.deps import Deps


def register_all(app: App, deps: Deps) -> None:
    """Register every surface's listeners on `app`."""
    from handlers.commands import ask

    for surface in (ask,):
        surface.register(app, deps)
