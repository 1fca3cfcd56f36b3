"""Slack surfaces: one module per surface, each with `register(app)`.

Handlers translate a Slack payload into a `core` call and its result into a reply; the words and
the Block Kit live here, the work in `core`. Listeners are named module-level functions; each
builds its `handlers.request.SlackRequest` and takes the process's `Deps` from Bolt's context
(`handlers.deps.deps_of`). This package never imports `bot`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from handlers.deps import Deps


def register_all(app: App, deps: Deps) -> None:
    """Hand every request `deps` (`handlers.deps.provide`) and register every surface's listeners."""
    from handlers.actions import answer_feedback, classify_feedback, experiment_confirm
    from handlers.commands import ask, classify, cluster, label, similar
    from handlers.deps import provide
    from handlers.events import app_home, app_mention, assistant, direct_message
    from handlers.shortcuts import add_from_message as add_example_shortcut
    from handlers.views import add_example as add_example_modal

    app.use(provide(deps))
    for surface in (
        ask,
        similar,
        cluster,
        app_mention,
        assistant,
        direct_message,
        classify,
        classify_feedback,
        answer_feedback,
        experiment_confirm,
        label,
        add_example_shortcut,
        add_example_modal,
        app_home,
    ):
        surface.register(app)
