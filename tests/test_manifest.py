"""manifest.yml creates the whole app: every surface the handlers serve, at the one request URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
URL = "https://YOUR-HOST/slack/events"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def test_slash_commands_and_shortcut() -> None:
    features = manifest()["features"]
    commands = {c["command"]: c for c in features["slash_commands"]}
    assert set(commands) == {"/classify", "/label", "/similar", "/cluster", "/ask"}
    for command in commands.values():
        assert command["url"] == URL
        assert command["description"] and command["usage_hint"]
        assert len(command["description"]) <= 100
    (shortcut,) = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"], shortcut["name"]) == (
        "message",
        "add_label_example",
        "Add as label example",
    )
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert features["app_home"]["messages_tab_read_only_enabled"] is False  # people DM the bot


def test_events_interactivity_and_scopes() -> None:
    data = manifest()
    settings = data["settings"]
    assert settings["event_subscriptions"]["request_url"] == URL
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    }
    assert data["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST/slack/oauth_redirect"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": URL}
    assert settings["socket_mode_enabled"] is False
    assert set(data["oauth_config"]["scopes"]["bot"]) >= {
        "assistant:write",
        "commands",
        "chat:write",
        "app_mentions:read",
        "im:history",
        "im:read",
        "im:write",
        "files:read",
        "files:write",
        "users:read",
        "channels:history",
        "groups:history",
        "channels:join",
    }
    assert len(data["display_information"]["long_description"]) >= 174  # Slack refuses shorter


def test_the_agent_surface_offers_the_prompts_the_threads_get() -> None:
    from handlers.events import assistant

    view = manifest()["features"]["assistant_view"]
    assert view["assistant_description"] and len(view["assistant_description"]) <= 200
    assert view["suggested_prompts"] == list(assistant.PROMPTS)
