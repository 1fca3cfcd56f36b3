"""Installing Gembot in several workspaces by OAuth, and forgetting a workspace that removes it.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set, Bolt runs Slack's OAuth flow: `GET /slack/install`
issues a one-time state (kept in the database, and in a cookie of the installer's browser) and
sends the installer to Slack; Slack sends them back to `GET /slack/oauth_redirect` with a code,
which `oauth.v2.access` turns into the workspace's bot token. slack_sdk's SQLAlchemy stores keep
the installations and the states in Gembot's own database (same engine as `Store`), in the tables
migration 0003 creates, the tokens encrypted (`bot.token_crypto`). Every request is then answered
with the token of the workspace it came from; a workspace with no installation is refused.

GEMBOT_ALLOWED_TEAMS narrows who may install and use it: an install approved in any other
workspace has its fresh token revoked at once and is never stored (`AllowedTeamsOAuthFlow`), and a
request from any other workspace is refused before its installation is looked up (`allowed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.error import BoltError
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_flow import OAuthFlow
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.request import BoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth.installation_store import Installation, InstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.web import WebClient
from sqlalchemy import Engine

from bot.token_crypto import EncryptedInstallationStore, cipher_for
from core.settings import Settings

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# How long an installer has between opening the install page and approving in Slack (seconds).
STATE_EXPIRATION = 600

NOT_INSTALLED = (
    "Gembot is not installed in this workspace (or it was removed): ask whoever runs it for the install link."
)


NOT_ALLOWED_PAGE = (
    "<html><head><title>Gembot is not available here</title></head><body>"
    "<h2>Gembot is not available for this workspace</h2>"
    "<p>Whoever runs this Gembot allows it in other workspaces only. Nothing was installed.</p>"
    "</body></html>"
)


def allowed(settings: Settings, *, team_id: str | None, enterprise_id: str | None) -> bool:
    """Whether GEMBOT_ALLOWED_TEAMS (None: every workspace) admits the workspace `team_id` of the
    organisation `enterprise_id` (an org-wide install names the organisation only)."""
    if settings.allowed_teams is None:
        return True
    return any(i and i.upper() in settings.allowed_teams for i in (team_id, enterprise_id))


def admits(settings: Settings) -> Callable[[BoltContext], bool]:
    """`allowed` for the workspace of a request's context: what authorization asks first."""

    def admitted(context: BoltContext) -> bool:
        return allowed(settings, team_id=context.team_id, enterprise_id=context.enterprise_id)

    return admitted


class WorkspaceNotAllowed(BoltError):
    """An install was approved in a workspace outside GEMBOT_ALLOWED_TEAMS."""


class AllowedTeamsOAuthFlow(OAuthFlow):
    """Bolt's OAuth flow, which stores an installation only for a workspace GEMBOT_ALLOWED_TEAMS admits.

    Slack has already issued the token when the flow learns the workspace (`oauth.v2.access`
    names it), so a refused install's token is revoked (`auth.revoke`) rather than left live, and
    the installer sees a page saying Gembot is not available there (403).
    """

    def __init__(self, *, gembot: Settings, client: WebClient, settings: OAuthSettings) -> None:
        settings.callback_options = CallbackOptions(success=_default_success, failure=_failure_page)
        super().__init__(client=client, settings=settings, logger=logging.getLogger("gembot.oauth"))
        self.gembot = gembot

    def store_installation(self, request: BoltRequest, installation: Installation) -> None:
        if allowed(self.gembot, team_id=installation.team_id, enterprise_id=installation.enterprise_id):
            super().store_installation(request, installation)
            return
        where = installation.team_id or installation.enterprise_id
        log.warning("refused an install in workspace %s (not in GEMBOT_ALLOWED_TEAMS)", where)
        for token in (installation.bot_token, installation.user_token):
            if token:
                try:
                    self.client.auth_revoke(token=token)
                except (SlackApiError, SlackClientError, OSError) as exc:
                    log.warning("could not revoke the refused install's token in %s: %s", where, exc)
        raise WorkspaceNotAllowed(f"workspace {where} is not in GEMBOT_ALLOWED_TEAMS")


def _default_success(args: SuccessArgs) -> BoltResponse:
    return args.default.success(args)


def _failure_page(args: FailureArgs) -> BoltResponse:
    if isinstance(args.error, WorkspaceNotAllowed):
        return BoltResponse(
            status=403, body=NOT_ALLOWED_PAGE, headers={"Content-Type": "text/html; charset=utf-8"}
        )
    return args.default.failure(args)


def oauth_enabled(settings: Settings) -> bool:
    """True when the settings ask for OAuth install (either credential set: `require` wants both)."""
    return bool(settings.slack_client_id or settings.slack_client_secret)


def installation_store(settings: Settings, engine: Engine) -> EncryptedInstallationStore:
    """slack_sdk's installation store on Gembot's database (its tables come from migration 0003),
    keeping the tokens encrypted with GEMBOT_TOKEN_KEY or a key derived from the client secret."""
    assert settings.slack_client_id is not None
    return EncryptedInstallationStore(
        client_id=settings.slack_client_id,
        engine=engine,
        cipher=cipher_for(settings),
        logger=logging.getLogger("gembot.oauth"),
    )


def oauth_settings(settings: Settings, engine: Engine) -> OAuthSettings:
    """Bolt's OAuth settings: the install and redirect paths, the scopes, both stores on `engine`.

    Everything is passed explicitly, so Bolt reads nothing from the environment behind the
    settings' back. Tokens stored in plain text (before encryption) or with a key listed after the
    first are encrypted with the first key here, once per app built.
    """
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    installations = installation_store(settings, engine)
    installations.encrypt_stored_tokens_at_start()
    return OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get(),
        scopes=list(settings.slack_scopes),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=installations,
        state_store=SQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_EXPIRATION, engine=engine, logger=logging.getLogger("gembot.oauth")
        ),
        state_expiration_seconds=STATE_EXPIRATION,
    )


def oauth_flow(settings: Settings, oauth: OAuthSettings, client: WebClient) -> AllowedTeamsOAuthFlow:
    """The install flow for `oauth` (see `AllowedTeamsOAuthFlow`), calling Slack through `client`."""
    return AllowedTeamsOAuthFlow(gembot=settings, client=client, settings=oauth)


def authorize(settings: Settings, oauth: OAuthSettings, client: WebClient) -> InstallationStoreAuthorize:
    """Bolt's installation-store authorization, remembering each token's `auth.test` in the process.

    Without the cache Bolt calls `auth.test` before every request. The cache is keyed by token and
    only consulted once the store has returned that token, so an installation deleted from the
    store is refused at once all the same. `client` (its API URL and retries) serves token rotation.
    """
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    return InstallationStoreAuthorize(
        logger=logging.getLogger("gembot.oauth"),
        installation_store=oauth.installation_store,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get(),
        cache_enabled=True,
        client=client,
    )


def register_revocation(app: App, store: InstallationStore) -> None:
    """`app_uninstalled` and `tokens_revoked` delete the workspace's stored tokens.

    Bolt's own `tokens_revoked` listener deletes only the `slack_bots` rows for a revoked bot
    token, while the `slack_installations` rows keep a copy of it that authorization would still
    find; a revoked bot token here removes every row of the workspace, as an uninstall does. The
    workspace's label sets and history stay, so that a reinstall finds them.
    """

    @app.event("app_uninstalled")
    def uninstalled(context: BoltContext) -> None:
        store.delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
        log.info("Gembot was uninstalled from %s: its tokens are deleted", _where(context))

    @app.event("tokens_revoked")
    def revoked(event: dict[str, Any], context: BoltContext) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            store.delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
            log.info("the bot token of %s was revoked: the workspace's tokens are deleted", _where(context))
            return
        for user_id in tokens.get("oauth") or []:
            store.delete_installation(
                enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
            )


def _where(context: BoltContext) -> str:
    team = context.team_id or "-"
    return f"{context.enterprise_id}/{team}" if context.enterprise_id else team
