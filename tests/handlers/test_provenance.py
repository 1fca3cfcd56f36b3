"""Who may remove an example, by where it came from, through the running HTTP app: whoever added
it as Slack says, its author when Slack said who that is, never an author a file claims."""

from __future__ import annotations

import itertools
from typing import Any

from handlers.rights import AUTHOR_OR_ADMIN
from tests.support.label_support import texts_of
from tests.support.slack_fixtures import BotServer

IMPORTER = "U0ANA"
CLAIMED = "U0BO"
REFUSED = f":no_entry: {AUTHOR_OR_ADMIN}"
REMOVED = ":wastebasket: Removed example"
_ts = itertools.count(1)


def label(server: BotServer, typed: str, *, user: str) -> str:
    """Send `/label typed` as `user`; return the private answer's text."""
    reply = server.send_command("/label", typed, user_id=user)
    assert reply.status == 200 and reply.body == "", reply.body
    (answer,) = server.slack.wait_for_response(reply.sent["response_url"])
    server.settle()
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"]) + "\n" + texts_of(answer)


def texts(server: BotServer) -> list[str]:
    assert server.deps is not None
    if not server.deps.store.list_sets(server.team):
        return []
    return [e.text for e in server.deps.store.list_examples(server.team, "default")]


def import_by_dm(server: BotServer, content: str, *, user: str) -> None:
    """`user` sends the bot `content` as a CSV file in their DM, with the word `import`."""
    file = server.slack.add_file(content.encode(), "labels.csv", "text/csv")
    ts = f"1700005{next(_ts):03d}.000100"
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "file_share",
        "user": user,
        "text": "import",
        "ts": ts,
        "event_ts": ts,
        "channel": f"D{user[1:]}",
        "channel_type": "im",
        "files": [file],
        "upload": True,
    }
    assert server.send_event(event).status == 200
    (update,) = server.slack.wait_for("chat.update")
    server.settle()
    assert update.params["text"].startswith("Imported "), update.params["text"]


def test_an_author_claimed_by_a_file_may_not_remove_the_row_the_importer_and_admins_may(
    bot_server: BotServer,
) -> None:
    claimed = (
        "text,label,author\n"
        f"my card was charged twice,billing,{CLAIMED}\n"
        f"where is my parcel,shipping,<@{CLAIMED}>\n"
        "refund my payment,billing,\n"
    )
    import_by_dm(bot_server, claimed, user=IMPORTER)
    assert bot_server.deps is not None
    store = bot_server.deps.store
    charged, refund, parcel = store.list_examples(bot_server.team, "default")
    assert (charged.author, charged.added_by, charged.author_from_file) == (CLAIMED, IMPORTER, True)

    # The file says B wrote it; Slack never did: B is refused, and the row stays.
    assert label(bot_server, f"remove {charged.id}", user=CLAIMED).startswith(REFUSED)
    assert label(bot_server, f"remove {parcel.id}", user=CLAIMED).startswith(REFUSED)
    assert texts(bot_server) == ["my card was charged twice", "refund my payment", "where is my parcel"]
    # Someone the file does not name is refused too.
    assert label(bot_server, f"remove {refund.id}", user="U0CY").startswith(REFUSED)

    # A imported it, as Slack said: A may remove it, though the change log names no example.
    assert REMOVED in label(bot_server, f"remove {charged.id}", user=IMPORTER)
    assert texts(bot_server) == ["refund my payment", "where is my parcel"]
    # And an admin may remove any of them.
    bot_server.slack.add_user("U0ADMIN", is_admin=True)
    assert REMOVED in label(bot_server, f"remove {parcel.id}", user="U0ADMIN")
    assert texts(bot_server) == ["refund my payment"]


def test_an_example_added_with_label_add_is_removed_by_whoever_added_it(bot_server: BotServer) -> None:
    assert ":white_check_mark: Added example #" in label(
        bot_server, "add billing: charged twice", user=CLAIMED
    )
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert (example.author, example.added_by, example.author_from_file) == (CLAIMED, CLAIMED, False)
    assert label(bot_server, f"remove {example.id}", user=IMPORTER).startswith(REFUSED)
    assert REMOVED in label(bot_server, f"remove {example.id}", user=CLAIMED)
    assert texts(bot_server) == []


def test_the_author_of_a_message_added_with_the_shortcut_may_remove_it(bot_server: BotServer) -> None:
    writer, curator = "U0CEE", "U0CURATOR"
    message = {"ts": "1700000000.000100", "user": writer, "text": "The courier lost my parcel"}
    reply = bot_server.send_shortcut("add_label_example", message=message, user_id=curator)
    assert reply.status == 200
    bot_server.slack.wait_for("views.open")
    (view,) = bot_server.slack.views().values()
    typed = {"type": "plain_text_input"}
    submitted = bot_server.send_view_submission(
        "add_label_example_modal",
        values={
            "set_new": {"name": typed | {"value": "default"}},
            "label_new": {"name": typed | {"value": "shipping"}},
        },
        private_metadata=view["private_metadata"],
        blocks=view["blocks"],
        view_id=view["id"],
        user_id=curator,
    )
    assert submitted.status == 200
    (confirmation,) = bot_server.slack.wait_for_response()
    bot_server.settle()
    assert confirmation["text"].startswith(":white_check_mark: Added the message as example #")
    assert bot_server.deps is not None
    (example,) = bot_server.deps.store.list_examples(bot_server.team, "default")
    assert (example.author, example.added_by, example.author_from_file) == (writer, curator, False)

    assert label(bot_server, f"remove {example.id}", user=IMPORTER).startswith(REFUSED)
    assert REMOVED in label(bot_server, f"remove {example.id}", user=writer)
    assert texts(bot_server) == []
