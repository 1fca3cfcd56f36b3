"""Who may change label sets from Slack: GEMBOT_CURATION, GEMBOT_ADMINS, and the workspace's admins.

With `GEMBOT_CURATION=anyone` (the default) anyone may add examples; with `admins`, only admins
may change a label set at all. An admin is a user listed in GEMBOT_ADMINS, or a workspace admin
or owner as `users.info` says (asked at most once every few minutes per user and process).
In `anyone` mode, removing an example takes whoever added it, its author, or an admin; in
`admins` mode, an admin.

Who added it is Slack's word: the user who ran `/label add`, submitted the "Add as label
example" modal, clicked a feedback button or sent the CSV by DM, as kept with the example (for an
example from before that was kept, the change log's `add` entry; an import of several names none).
Its author counts only when it is not a file's claim: the user of `/label add` or of a
feedback button and the message's author for the shortcut are Slack's word (and
`gembot labels add --author` the operator's). The `author` of an imported row (a CSV or JSON
file, by DM or `gembot labels import`) is whatever the file says, typed by anyone: trusted, it
would hand the rows to whoever a file names (an export re-imported elsewhere, a file passed
around), so only the Slack user who imported them (none for the command line) and admins may
remove those rows.

The command line is not checked: whoever runs it has the database already.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.settings import Settings

log = logging.getLogger(__name__)

ADMINS_ONLY = "Only admins can change label sets in this workspace (GEMBOT_CURATION=admins)."
AUTHOR_OR_ADMIN = (
    "Only whoever added the example, the author of the message it came from, or an admin can remove it."
)
#: How long a users.info answer is trusted, in seconds: long enough to spare Slack a call per
#: click, short enough that a demoted admin soon loses the right.
CACHE_SECONDS = 300.0
#: Entries kept at most; expired ones are dropped when the cache fills up.
CACHE_SIZE = 10_000


class Rights:
    """The curation rules of `settings`, with a per-process cache of who is a workspace admin."""

    def __init__(
        self, settings: Settings, *, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._admins: dict[tuple[str, str], tuple[bool, float]] = {}

    def is_admin(self, client: WebClient, team: str, user: str | None) -> bool:
        """Whether `user` is in GEMBOT_ADMINS or an admin or owner of the workspace.

        When Slack cannot say (an error, a missing scope) the answer is no, and it is not cached.
        """
        if not user:
            return False
        if user.upper() in self.settings.admins:
            return True
        key = (team, user)
        now = self._clock()
        with self._lock:
            cached = self._admins.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            person = client.users_info(user=user).get("user") or {}
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("users.info failed for %s (%s): not treated as an admin", user, error)
            return False
        admin = any(bool(person.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))
        with self._lock:
            if len(self._admins) >= CACHE_SIZE:
                self._admins = {k: v for k, v in self._admins.items() if v[1] > now}
            self._admins[key] = (admin, now + self.ttl)
        return admin

    def curation_refusal(self, client: WebClient, team: str, user: str | None) -> str | None:
        """Why `user` may not add to a label set, as a sentence; None when they may."""
        if self.settings.curation == "anyone" or self.is_admin(client, team, user):
            return None
        return ADMINS_ONLY

    def removal_refusal(
        self,
        client: WebClient,
        team: str,
        user: str | None,
        *,
        author: str | None,
        added_by: str | None,
        author_from_file: bool = False,
    ) -> str | None:
        """Why `user` may not remove an example with this `author`, added by `added_by`; None when
        they may. An `author_from_file` (an imported file's claim) gives no right."""
        if self.settings.curation == "admins":
            return None if self.is_admin(client, team, user) else ADMINS_ONLY
        trusted = {added_by} if author_from_file else {added_by, author}
        if user and user in trusted:
            return None
        return None if self.is_admin(client, team, user) else AUTHOR_OR_ADMIN
