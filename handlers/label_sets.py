"""What the label-set surfaces share: `set:NAME` in a command, the sentences
for a set that cannot classify yet, and the few Block Kit pieces they all draw.

Used by `/classify`, `/label`, the classification buttons, the "Add as label example" shortcut and
its modal, and App Home.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.errors import InvalidInput, NotFound
from core.store import SetSummary, Store
from handlers import text

if TYPE_CHECKING:
    from handlers.deps import Deps
    from handlers.request import SlackRequest

#: The set a command uses without `set:NAME`; the CLI's default too, so both see the same set.
DEFAULT_SET = "default"
NO_SET_YET = "No label set yet — add examples with `/label add LABEL: TEXT`."
#: Slack caps a select option's value at 150 characters; longer label names travel as a hash.
OPTION_VALUE_LIMIT = 150
#: Slack caps an option's visible text at 75 characters.
OPTION_TEXT_LIMIT = 75
#: Slack's user ids, the only thing the bot puts into a mention it writes itself.
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")

_SET_PREFIX = re.compile(r'^\s*set:(?:"([^"]*)"|(\S*))\s*', re.IGNORECASE)


@dataclass(frozen=True)
class Scoped:
    """A command's text with its `set:NAME` taken off: `set_name` is None when none was given."""

    set_name: str | None
    rest: str

    def set_or_default(self) -> str:
        return self.set_name or DEFAULT_SET


def take_set(command_text: str) -> Scoped:
    """Split a leading `set:NAME` (or `set:"a name"`) off `command_text`.

    `set:` with nothing after it counts as no set, so the default applies.
    """
    match = _SET_PREFIX.match(command_text)
    if match is None:
        return Scoped(None, command_text.strip())
    name = (match.group(1) if match.group(1) is not None else match.group(2) or "").strip()
    return Scoped(name or None, command_text[match.end() :].strip())


def mention(user_id: str | None) -> str:
    """`<@U…>` for a real user id (the bot names the person who acted, on purpose); else "someone"."""
    if user_id and USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return "someone"


def bold(name: str) -> str:
    """A set or label name in bold, escaped: a name is user input and must ping no one."""
    shown = text.neutralise(name.replace("*", "∗").replace("\n", " "))
    return f"*{shown}*"


def shorten(value: str, width: int) -> str:
    """`value` on one line, at most `width` characters (an ellipsis marks a cut)."""
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def quote(value: str, width: int = 2_500) -> str:
    """A user's text as a mrkdwn block quote, neutralised and cut to `width` characters."""
    cut = value if len(value) <= width else value[: width - 1].rstrip() + "…"
    return "\n".join("> " + line for line in text.neutralise(cut).splitlines() or [""])


def set_token(name: str) -> str:
    """How a command names the set `name`: `set:NAME`, quoted when the name has spaces."""
    return f'set:"{name}"' if any(c.isspace() for c in name) else f"set:{name}"


def examples_count(summary: SetSummary) -> int:
    return sum(summary.label_counts.values())


def labelled(summary: SetSummary) -> list[str]:
    """The set's labels that have at least one example."""
    return [label for label, count in summary.label_counts.items() if count > 0]


def curation_refused(deps: Deps, request: SlackRequest) -> bool:
    """True when the requester may not change the workspace's label sets (`handlers.rights`); they
    have then been told so, privately."""
    refusal = deps.rights.curation_refusal(request.client, request.workspace, request.user)
    if refusal:
        request.replier.ephemeral(f":no_entry: {refusal}")
    return refusal is not None


def find_set(store: Store, team_id: str, set_name: str | None, *, command: str) -> SetSummary | str:
    """The set `set_name` (None: the default), or a sentence saying it does not exist and what does.

    `command` ("/classify") is how the sentence tells the user to name another set.
    """
    name = set_name or DEFAULT_SET
    try:
        return store.get_set(team_id, name)
    except NotFound:
        others = [s.name for s in store.list_sets(team_id)]
    if not others:
        return NO_SET_YET
    listed = ", ".join(bold(n) for n in others[:20]) + (" …" if len(others) > 20 else "")
    return (
        f"There is no label set {bold(name)} in this workspace; it has {listed}. "
        f"Name one with `{command} set:NAME …`."
    )


def set_problem(
    store: Store, team_id: str, set_name: str | None, *, command: str, purpose: str = "to classify"
) -> str | None:
    """Why `set_name` (None: the default) cannot classify yet, as a sentence; None when it can.

    `purpose` ends the sentence about a set with fewer than two labels ("to classify").
    """
    found = find_set(store, team_id, set_name, command=command)
    if isinstance(found, str):
        return found
    have = len(labelled(found))
    if have < 2:
        scope = "" if set_name is None else " " + set_token(set_name)
        return (
            f"Label set {bold(found.name)} needs at least two labels with examples {purpose} "
            f"(it has {have}): add some with `/label add{scope} LABEL: TEXT`."
        )
    return None


def option(label: str, *, shown: str | None = None) -> dict[str, Any]:
    """A select option for a label (or set) name; see `option_value`."""
    return {
        "text": {"type": "plain_text", "text": shorten(shown or label, OPTION_TEXT_LIMIT), "emoji": False},
        "value": option_value(label),
    }


def option_value(name: str) -> str:
    """`name` itself when it fits an option's value, else `sha:` and a hash of it (see `from_option`)."""
    if len(name) <= OPTION_VALUE_LIMIT and not name.startswith("sha:"):
        return name
    return "sha:" + hashlib.sha256(name.encode()).hexdigest()[:40]


def from_option(value: str, names: list[str]) -> str | None:
    """The name among `names` that `option_value` turned into `value`; None when it is gone."""
    for name in names:
        if option_value(name) == value:
            return name
    return None


def permalink(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    """The message's permalink, or None when Slack will not give one (a DM the bot is not in, ...)."""
    if not channel or not ts:
        return None
    try:
        found = client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
    except SlackApiError:
        return None
    return str(found) if found else None


def refusal(check: Callable[[str], str], value: str) -> str | None:
    """What the store's `check` (a name check of `core.store.validation`) would refuse about
    `value`, as a sentence; None when it is fine. Used before the ack answers, to say it at once."""
    try:
        check(value)
    except InvalidInput as exc:
        said = str(exc)
        return said[:1].upper() + said[1:] + ("" if said.endswith(".") else ".")
    return None
