"""Builds the Bolt app: the Slack client from the settings, who may use it, event de-duplication,
every surface.

`build_app(deps)` is the one place that knows how Gembot is wired to Slack; the HTTP server
(`bot.wsgi`), Socket Mode (`gembot serve --socket`) and the tests all go through it. Two modes:
SLACK_BOT_TOKEN serves that token's workspace and refuses every other (`bot.workspaces`);
SLACK_CLIENT_ID and SLACK_CLIENT_SECRET install Gembot in any number of workspaces by OAuth and
answer each with its own token (`bot.oauth`).
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import oauth
from bot.limits import ChannelGate
from bot.slack_retries import Deliveries, DeliveryTracker, TrackedExecutor, TrackingApp
from bot.workspaces import ANOTHER_WORKSPACE, OneWorkspace, RefusingSafely, register_removal_notices
from core.errors import GembotError
from core.settings import Settings
from handlers import register_all
from handlers.deps import Deps
from handlers.replies import retry_handlers

log = logging.getLogger(__name__)


class SlackNotConfigured(GembotError):
    """A Slack credential the chosen mode needs is not set."""


def require(settings: Settings, *, signing_secret: bool = True, app_token: bool = False) -> None:
    """Raise SlackNotConfigured naming the missing credentials (in one line), or a mix of the two modes."""
    if oauth.oauth_enabled(settings):
        _require_oauth(settings, signing_secret=signing_secret, app_token=app_token)
        return
    _require_set(
        ("SLACK_BOT_TOKEN", settings.slack_bot_token, True),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret, signing_secret),
        ("SLACK_APP_TOKEN", settings.slack_app_token, app_token),
        then="copy {it} from the Slack app's settings (see the README)",
    )


def _require_set(*needs: tuple[str, object, bool], then: str) -> None:
    """Raise SlackNotConfigured naming the needed settings (name, value, needed) that have no
    value, then saying what to do (`then`, where {it} is "it" or "them")."""
    missing = [name for name, value, needed in needs if needed and not value]
    if missing:
        one = len(missing) == 1
        what = f"{' and '.join(missing)} {'is' if one else 'are'} not set"
        raise SlackNotConfigured(f"{what}: {then.format(it='it' if one else 'them')}")


def _require_oauth(settings: Settings, *, signing_secret: bool, app_token: bool) -> None:
    if settings.slack_bot_token:
        raise SlackNotConfigured(
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are both set: set SLACK_BOT_TOKEN "
            "to serve one workspace, or the client id and secret to install by OAuth, not both"
        )
    if app_token:
        raise SlackNotConfigured(
            "OAuth install (SLACK_CLIENT_ID) needs HTTP mode, where Slack reaches /slack/install and "
            "/slack/oauth_redirect: Socket Mode serves the one workspace of SLACK_BOT_TOKEN"
        )
    _require_set(
        ("SLACK_CLIENT_ID", settings.slack_client_id, True),
        ("SLACK_CLIENT_SECRET", settings.slack_client_secret, True),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret, signing_secret),
        then="OAuth install needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET from "
        "the Slack app's settings (see the README)",
    )


def api_base_url(settings: Settings) -> str:
    """SLACK_API_URL with the trailing slash slack_sdk needs, or Slack's own."""
    url = settings.slack_api_url or WebClient.BASE_URL
    return url if url.endswith("/") else url + "/"


def slack_client(settings: Settings) -> WebClient:
    """A WebClient for the bot token that retries rate limits, 5xx answers and dropped connections."""
    if not settings.slack_bot_token:
        raise SlackNotConfigured("SLACK_BOT_TOKEN is not set: copy it from the Slack app's settings")
    return web_client(settings, token=settings.slack_bot_token.get())


def web_client(settings: Settings, *, token: str | None = None) -> WebClient:
    """A WebClient for SLACK_API_URL that retries rate limits, 5xx answers and dropped connections.

    Without `token` it is the template Bolt copies for each request, with that request's token.
    """
    return WebClient(
        token=token,
        base_url=api_base_url(settings),
        retry_handlers=retry_handlers(),
    )


def build_app(
    deps: Deps,
    *,
    executor: Executor | None = None,
    deliveries: DeliveryTracker | None = None,
    verify_requests: bool = True,
) -> App:
    """The Bolt app for `deps`, every surface registered.

    With SLACK_BOT_TOKEN, building it calls Slack's `auth.test` once, to check the token and learn
    its workspace. With OAuth it calls nothing; the installations live in `deps.store`'s database.
    `verify_requests=False` is for Socket Mode, where requests arrive over the app's own WebSocket
    and carry no signature. `executor` runs the lazy listeners (default: GEMBOT_SLACK_THREADS
    threads); `deliveries` tracks the requests in flight (`bot.slack_retries`; a serving process
    passes its `Lifecycle`'s, whose resumer renews their leases).
    """
    settings = deps.settings
    require(settings, signing_secret=verify_requests)
    deliveries = deliveries or DeliveryTracker(
        deps.store, lease=timedelta(seconds=settings.job_lease_seconds)
    )
    # The app's own client carries no token: each request gets a copy with its workspace's token.
    client = web_client(settings)
    common: dict[str, Any] = {
        "name": "gembot",
        "signing_secret": settings.slack_signing_secret.get() if settings.slack_signing_secret else None,
        "client": client,
        "request_verification_enabled": verify_requests,
        # Unknown requests are acknowledged and logged, not raised: Slack may send events this
        # version has no listener for (the manifest can be newer than the code).
        "raise_error_for_unhandled_request": False,
        # Each listener holds the request that started it until it ends (`bot.slack_retries`).
        "listener_executor": TrackedExecutor(
            executor
            or ThreadPoolExecutor(max_workers=settings.slack_threads, thread_name_prefix="gembot-lazy")
        ),
    }
    if oauth.oauth_enabled(settings):
        oauth_settings = oauth.oauth_settings(settings, deps.store.engine)
        app = TrackingApp(
            oauth_flow=oauth.oauth_flow(settings, oauth_settings, client),
            # Bolt takes an `Authorize` as it is; its annotation only names plain functions.
            authorize=RefusingSafely(  # type: ignore[arg-type]
                oauth.authorize(settings, oauth_settings, client), admits=oauth.admits(settings)
            ),
            user_facing_authorize_error_message=oauth.NOT_INSTALLED,
            **common,
        )
        oauth.register_revocation(app, oauth_settings.installation_store)
    else:
        workspace = _one_workspace(settings)
        app = TrackingApp(
            authorize=workspace,  # type: ignore[arg-type]
            user_facing_authorize_error_message=ANOTHER_WORKSPACE,
            **common,
        )
        register_removal_notices(app, workspace)
    app.use(Deliveries(deliveries))
    app.use(ChannelGate(settings.allowed_channels))
    register_all(app, deps)
    return app


def _one_workspace(settings: Settings) -> OneWorkspace:
    """The single-workspace authorization, from one `auth.test` of the bot token."""
    client = slack_client(settings)
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        raise SlackNotConfigured(
            f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}): check it in the app's settings"
        ) from None
    log.info("serving workspace %s (%s) only", identity.get("team_id"), identity.get("team"))
    assert client.token is not None and isinstance(identity.data, dict)
    return OneWorkspace(
        token=client.token, identity=identity.data, scopes=identity.headers.get("x-oauth-scopes")
    )
