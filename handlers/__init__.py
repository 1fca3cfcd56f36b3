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
    from handlers.actions import classify_feedback
    from handlers.commands import ask, classify, cluster, label, similar
    from handlers.events import app_home, app_mention, direct_message
    from handlers.shortcuts import add_from_message as add_example_shortcut
    from handlers.views import add_example as add_example_modal

    for surface in (
        ask,
        similar,
        cluster,
        app_mention,
        direct_message,
        classify,
        classify_feedback,
        label,
        add_example_shortcut,
        add_example_modal,
        app_home,
    ):
        surface.register(app, deps)
