"""The workspace key every store read and write is scoped by.

A workspace is its team id; on Enterprise Grid, where one organisation holds several workspaces,
the key is `ENTERPRISE_ID:TEAM_ID`, so that the enterprise is part of the scope wherever Slack
names it. Outside Grid the key is the bare team id, as the command line's `--team` takes it.

Handlers take the key from Bolt's context, not from the payload: Bolt reads the team and
enterprise of the installation that is answering (for an event, `authorizations[0]`, which in a
channel shared with another organisation is this workspace, not the sender's), the same way for
every kind of request, so a command, an event and a button in one workspace get the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def workspace_key(team_id: str | None, enterprise_id: str | None = None) -> str:
    """`team_id`, or `enterprise_id:team_id` when there is an enterprise id ("" when neither)."""
    team = team_id or ""
    return f"{enterprise_id}:{team}" if enterprise_id else team


def workspace_of(context: Mapping[str, Any]) -> str:
    """The workspace key of a request, from Bolt's `context` (any listener can ask for it)."""
    return workspace_key(context.get("team_id"), context.get("enterprise_id"))
