"""What the label-set scenario tests share: a small label set the bag-of-words embedder sorts
cleanly, and readers for the Block Kit that reached the Slack stand-in."""

from __future__ import annotations

from typing import Any

from core.store import ExampleInput
from tests.support.slack_fixtures import BotServer

BILLING = [
    "I was charged twice on my invoice",
    "refund the payment taken from my card",
    "my invoice shows a wrong charge",
    "the payment on my card failed",
]
SHIPPING = [
    "where is my package delivery",
    "the parcel delivery is late",
    "the courier lost my package",
    "track the delivery of my parcel",
]


def seed(server: BotServer, set_name: str = "default", *, labels: dict[str, list[str]] | None = None) -> None:
    """Put a label set in the bot's database (billing and shipping unless `labels` says otherwise)."""
    assert server.deps is not None
    chosen = labels if labels is not None else {"billing": BILLING, "shipping": SHIPPING}
    items = [ExampleInput(label, text) for label, texts in chosen.items() for text in texts]
    server.deps.store.add_examples(server.team, set_name, items)


def texts_of(params: dict[str, Any]) -> str:
    """Every piece of text in a message or view (text, sections, contexts, buttons), joined."""
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        found.extend(_block_texts(block))
    return "\n".join(found)


def _block_texts(block: dict[str, Any]) -> list[str]:
    found = []
    if isinstance(block.get("text"), dict):
        found.append(block["text"]["text"])
    elif isinstance(block.get("text"), str):  # a markdown block
        found.append(block["text"])
    for element in block.get("elements") or []:
        if isinstance(element.get("text"), str):
            found.append(element["text"])
        elif isinstance(element.get("text"), dict):
            found.append(element["text"]["text"])
    return found


def block(params: dict[str, Any], kind: str) -> dict[str, Any]:
    """The first block of type `kind` (e.g. "actions")."""
    for found in params.get("blocks") or []:
        if found["type"] == kind:
            return dict(found)
    raise AssertionError(f"no {kind} block in {params.get('blocks')}")


def element(actions: dict[str, Any], action_id: str) -> dict[str, Any]:
    for found in actions["elements"]:
        if found["action_id"] == action_id:
            return dict(found)
    raise AssertionError(f"no {action_id} element in {actions}")
