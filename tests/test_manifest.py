"""manifest.yml creates the whole app: every surface the handlers serve, at the one request URL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from core.settings import SLACK_BOT_SCOPES
from tests.support.slack_fixtures import BotServer

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


# -- the manifest asks for exactly what the code uses ---------------------------------------------

ROOT = MANIFEST.parent
#: Every Web API method Gembot may call (slack_sdk's method name) and the bot scopes it needs.
#: A call to a method missing here fails `test_every_web_api_call_is_known`: add it with its scopes
#: (https://docs.slack.dev/reference/methods), and the manifest follows.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth_test": (),
    "auth_revoke": (),
    "chat_postMessage": ("chat:write",),
    "chat_postEphemeral": ("chat:write",),
    "chat_update": ("chat:write",),
    "chat_delete": ("chat:write",),
    "chat_getPermalink": (),
    "chat_startStream": ("chat:write",),
    "chat_appendStream": ("chat:write",),
    "chat_stopStream": ("chat:write",),
    "chat_stream": ("chat:write",),
    # /cluster last N reads public and private channels, and the DM with the bot
    "conversations_history": ("channels:history", "groups:history", "im:history"),
    # mid-thread summons (channels only) and Bolt's assistant thread-context store (the DM)
    "conversations_replies": ("channels:history", "groups:history", "im:history"),
    "conversations_join": ("channels:join",),
    "conversations_open": ("im:write",),
    # files.info, and the file downloads (url_private) it stands for
    "files_info": ("files:read",),
    "files_upload_v2": ("files:write",),
    "users_info": ("users:read",),
    "views_open": (),
    "views_update": (),
    "views_publish": (),
    "assistant_threads_setTitle": ("assistant:write",),
    "assistant_threads_setSuggestedPrompts": ("assistant:write",),
    "assistant_threads_setStatus": ("assistant:write",),
}
#: What Bolt calls for Gembot's listeners: `say` and `set_suggested_prompts` in assistant threads,
#: and its default thread-context store (`conversations.replies`, then `chat.update` of the greeting).
BOLT_CALLS = {
    "chat_postMessage",
    "assistant_threads_setSuggestedPrompts",
    "conversations_replies",
    "chat_update",
}
#: Each bot event and the scope Slack requires to send it (None: none).
EVENT_SCOPES: dict[str, str | None] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
    "app_home_opened": None,
    "app_uninstalled": None,
    "tokens_revoked": None,
}
#: `app.event(...)` names as the manifest spells them (Gembot's `message` listeners are the DM's).
EVENT_NAMES = {"message": "message.im"}
_CALL = re.compile(
    r"(?:client|\))\.((?:auth|chat|conversations|files|users|views|assistant_threads|reactions|pins|bookmarks|team"
    r"|usergroups|apps|bots|emoji|reminders|search|dnd)_[A-Za-z0-9_]+)\("
)
_EVENT = re.compile(r"\.event\(\s*\"([a-z_.]+)\"")


def _sources() -> list[Path]:
    return sorted(p for folder in ("bot", "handlers") for p in (ROOT / folder).rglob("*.py"))


def called_methods() -> set[str]:
    """The Web API methods the code calls, by slack_sdk name (`client.chat_postMessage(`...)."""
    return {m for path in _sources() for m in _CALL.findall(path.read_text(encoding="utf-8"))}


def listened_events() -> set[str]:
    """The events the code listens to: `app.event("…")` and, with Bolt's Assistant middleware, its two."""
    found = {
        EVENT_NAMES.get(name, name)
        for path in _sources()
        for name in _EVENT.findall(path.read_text(encoding="utf-8"))
    }
    if any("app.assistant(" in path.read_text(encoding="utf-8") for path in _sources()):
        found |= {"assistant_thread_started", "assistant_thread_context_changed"}
    return found


def test_every_web_api_call_is_known() -> None:
    unknown = called_methods() - set(METHOD_SCOPES)
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {sorted(unknown)}"
    assert {"chat_postMessage", "conversations_replies", "files_upload_v2"} <= called_methods()


def test_the_bot_events_are_exactly_those_listened_to() -> None:
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert len(events) == len(set(events))
    assert set(events) == listened_events() == set(EVENT_SCOPES)


def test_the_scopes_are_exactly_those_used() -> None:
    data = manifest()
    needed = {"commands"}  # the slash commands and the message shortcut
    for method in called_methods() | BOLT_CALLS:
        needed.update(METHOD_SCOPES[method])
    needed.update(s for e in data["settings"]["event_subscriptions"]["bot_events"] if (s := EVENT_SCOPES[e]))
    bot_scopes = data["oauth_config"]["scopes"]["bot"]
    assert len(bot_scopes) == len(set(bot_scopes))
    assert set(bot_scopes) == needed
    assert set(SLACK_BOT_SCOPES) == needed


def test_every_bot_event_reaches_a_listener(bot_server: BotServer) -> None:
    """Each event the manifest subscribes to is matched by a listener of the built app (Bolt's
    Assistant middleware takes the assistant ones); none is left unhandled."""
    from slack_bolt import Assistant, BoltRequest, BoltResponse
    from slack_bolt.request.payload_utils import is_assistant_event

    app = bot_server.app
    assert app is not None
    listeners = app._listeners  # read only: Bolt keeps no public list
    assistants = [m for m in app._middleware_list if isinstance(m, Assistant)]
    samples: dict[str, dict[str, Any]] = {
        "app_mention": {
            "type": "app_mention",
            "user": "U1",
            "text": "<@U0GEMBOT> hi",
            "channel": "C1",
            "ts": "1.1",
        },
        "message.im": {
            "type": "message",
            "user": "U1",
            "text": "hi",
            "channel": "D1",
            "channel_type": "im",
            "ts": "1.1",
        },
        "assistant_thread_started": {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "1.1", "context": {}},
        },
        "assistant_thread_context_changed": {
            "type": "assistant_thread_context_changed",
            "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "1.1", "context": {}},
        },
        "app_home_opened": {"type": "app_home_opened", "user": "U1", "tab": "home"},
        "app_uninstalled": {"type": "app_uninstalled"},
        "tokens_revoked": {"type": "tokens_revoked", "tokens": {"bot": ["U0GEMBOT"]}},
    }
    for name in manifest()["settings"]["event_subscriptions"]["bot_events"]:
        body = {"type": "event_callback", "team_id": "T1", "event": samples[name]}
        if is_assistant_event(body):
            assert assistants, name
            continue
        request = BoltRequest(body=json.dumps(body), mode="socket_mode")
        assert any(listener.matches(req=request, resp=BoltResponse(status=200)) for listener in listeners), (
            name
        )
