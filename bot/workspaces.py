"""Single-workspace mode: the bot token's workspace is served, every other one is refused.

With SLACK_BOT_TOKEN the bot has one workspace's token and one workspace's data. A request signed
by Slack can still come from another workspace (the app was distributed and installed there too,
or a slash command was run from a connected workspace): answering it would use this workspace's
token and show this workspace's label sets. `OneWorkspace` is Bolt's authorization step for this
mode, so such a request is turned away before any middleware or listener sees it: no database
read, no Gemini call; Bolt tells the person (through the request's `response_url`) and
acknowledges an event with a 200 and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize

log = logging.getLogger(__name__)

ANOTHER_WORKSPACE = (
    "Gembot is installed for another workspace, so it cannot answer here. Ask whoever runs it to "
    "set it up for this workspace."
)


class OneWorkspace(Authorize):
    """Authorizes requests from the workspace `auth.test` named for the bot token, and no other.

    `identity` is that `auth.test` answer (team_id, enterprise_id, user_id, bot_id, ...).
    On Enterprise Grid the enterprise id has to match too, when the request carries one.
    """

    def __init__(self, *, token: str, identity: Mapping[str, Any], scopes: str | None = None) -> None:
        self.token = token
        self.team_id = identity.get("team_id")
        self.enterprise_id = identity.get("enterprise_id")
        self._identity = dict(identity)
        self._scopes = scopes

    def serves(self, *, team_id: str | None, enterprise_id: str | None) -> bool:
        if not team_id or team_id != self.team_id:
            return False
        return enterprise_id is None or self.enterprise_id is None or enterprise_id == self.enterprise_id

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        if not self.serves(team_id=team_id, enterprise_id=enterprise_id):
            log.warning(
                "refused a request from workspace %s%s: this Gembot serves %s only",
                team_id or "(none)",
                f" (enterprise {enterprise_id})" if enterprise_id else "",
                self.team_id,
            )
            respond_safely(context)
            return None
        # A fresh result per request: Bolt keeps it in the request's context.
        return AuthorizeResult(
            enterprise_id=self.enterprise_id,
            team_id=self.team_id,
            team=self._identity.get("team"),
            url=self._identity.get("url"),
            bot_id=self._identity.get("bot_id"),
            bot_user_id=self._identity.get("user_id"),
            bot_token=self.token,
            bot_scopes=self._scopes,
            user_id=user_id,
        )


def respond_safely(context: BoltContext) -> None:
    """Make the refusal Bolt is about to send through the request's `response_url` unable to fail
    the request: a URL that does not answer is logged, not turned into a 500."""
    if context.response_url is None:
        return
    respond = context.respond  # made on first use, from the response_url
    assert respond is not None

    def respond_or_log(*args: Any, **kwargs: Any) -> Any:
        try:
            return respond(*args, **kwargs)
        except Exception as exc:  # urllib's errors, slack_sdk's: any way a webhook post fails
            log.warning("could not tell workspace %s it is refused: %s", context.team_id, exc)
            return None

    context["respond"] = respond_or_log


class RefusingSafely(Authorize):
    """Another `Authorize` (OAuth's installation store), whose refusals cannot fail the request;
    a workspace that `admits` turns away is refused before the store is asked."""

    def __init__(self, inner: Authorize, *, admits: Callable[[BoltContext], bool] | None = None) -> None:
        self.inner = inner
        self.admits = admits

    def __call__(self, *, context: BoltContext, **kwargs: Any) -> AuthorizeResult | None:
        if self.admits is not None and not self.admits(context):
            log.info("refused a request from workspace %s (not in GEMBOT_ALLOWED_TEAMS)", context.team_id)
            respond_safely(context)
            return None
        result = self.inner(context=context, **kwargs)
        if result is None:
            respond_safely(context)
        return result


def register_removal_notices(app: App, workspace: OneWorkspace) -> None:
    """Acknowledge `app_uninstalled` and `tokens_revoked`, and say when they mean this bot is cut off.

    There is nothing to delete in this mode (the token lives in the environment), but the events
    are subscribed to for OAuth installs, and an unanswered event is one Slack sends again.
    """

    def notice(what: str, context: BoltContext) -> None:
        if workspace.serves(team_id=context.team_id, enterprise_id=context.enterprise_id):
            log.warning("%s in workspace %s: SLACK_BOT_TOKEN no longer works", what, context.team_id)
        else:
            log.info("ignored %s from workspace %s, which this Gembot does not serve", what, context.team_id)

    @app.event("app_uninstalled")
    def uninstalled(context: BoltContext) -> None:
        notice("Gembot was uninstalled", context)

    @app.event("tokens_revoked")
    def revoked(event: dict[str, Any], context: BoltContext) -> None:
        if (event.get("tokens") or {}).get("bot"):
            notice("the bot token was revoked", context)
