"""Builds the Bolt app: the Slack client from the settings, event de-duplication, every surface.

`build_app(deps)` is the one place that knows how Gembot is wired to Slack; the HTTP server
(`bot.wsgi`), Socket Mode (`gembot serve --socket`) and the tests all go through it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.dedupe import EventDeduplication
from core.errors import GembotError
from core.settings import Settings
from handlers import register_all
from handlers.deps import Deps

log = logging.getLogger(__name__)


class SlackNotConfigured(GembotError):
    """A Slack credential the chosen mode needs is not set."""


def require(settings: Settings, *, signing_secret: bool = True, app_token: bool = False) -> None:
    """Raise SlackNotConfigured naming the first missing credential (in one line)."""
    missing = [
        name
        for name, value, needed in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token, True),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret, signing_secret),
            ("SLACK_APP_TOKEN", settings.slack_app_token, app_token),
        )
        if needed and not value
    ]
    if missing:
        raise SlackNotConfigured(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: copy "
            f"{'it' if len(missing) == 1 else 'them'} from the Slack app's settings (see the README)"
        )


def api_base_url(settings: Settings) -> str:
    """SLACK_API_URL with the trailing slash slack_sdk needs, or Slack's own."""
    url = settings.slack_api_url or WebClient.BASE_URL
    return url if url.endswith("/") else url + "/"


def slack_client(settings: Settings) -> WebClient:
    """A WebClient for the bot token that retries rate limits, 5xx answers and dropped connections."""
    require(settings, signing_secret=False)
    assert settings.slack_bot_token is not None
    return WebClient(
        token=settings.slack_bot_token.get(),
        base_url=api_base_url(settings),
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_app(deps: Deps, *, executor: Executor | None = None, verify_requests: bool = True) -> App:
    """The Bolt app for `deps`, every surface registered.

    Building it calls Slack's `auth.test` once (Bolt checks the token). `verify_requests=False`
    is for Socket Mode, where requests arrive over the app's own WebSocket and carry no
    signature. `executor` runs the lazy listeners (default: GEMBOT_SLACK_THREADS threads).
    """
    settings = deps.settings
    require(settings, signing_secret=verify_requests)
    client = slack_client(settings)
    app = App(
        name="gembot",
        signing_secret=settings.slack_signing_secret.get() if settings.slack_signing_secret else None,
        client=client,
        request_verification_enabled=verify_requests,
        # Unknown requests are acknowledged and logged, not raised: Slack may send events this
        # version has no listener for (the manifest can be newer than the code).
        raise_error_for_unhandled_request=False,
        listener_executor=executor
        or ThreadPoolExecutor(max_workers=settings.slack_threads, thread_name_prefix="gembot-lazy"),
    )
    app.use(EventDeduplication(deps.store, retention_hours=settings.event_retention_hours))
    register_all(app, deps)
    return app
