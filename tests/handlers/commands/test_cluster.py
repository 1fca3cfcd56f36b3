"""`/cluster` through the running HTTP app, with the Slack and Gemini stand-ins behind it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from handlers.channel_history import written_by_a_person
from handlers.commands.cluster import parse
from handlers.text import plain
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.gemini import Prompt
from tests.support.slack_fixtures import BotServer, MakeBotServer

PNG = b"\x89PNG\r\n\x1a\n"
LIVE_SEQUENCE = re.compile(r"<[!@#]")
BACKUPS = [
    "database backup failed tonight",
    "the database backup failed again",
    "database backup job failed",
]
LUNCH = ["team lunch on friday with pizza", "pizza lunch for the team friday"]


def texts_of(params: dict[str, Any]) -> list[str]:
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements") or []:
            found.append(element.get("text", ""))
    return found


def listing_of(params: dict[str, Any]) -> str:
    return "\n\n".join(b["text"]["text"] for b in params.get("blocks") or [] if b["type"] == "section")


def clusters_in(listing: str) -> dict[str, list[str]]:
    """{heading: [texts]} from the listing's paragraphs."""
    found = {}
    for paragraph in listing.split("\n\n"):
        heading, *items = paragraph.split("\n")
        found[heading.split("  (")[0]] = [item.removeprefix("• ") for item in items]
    return found


def groups_in(prompt: Prompt) -> list[str]:
    """The groups of the title prompt, as text, in order."""
    return re.split(r"\n\n(?=Group \d+ )", prompt.last_user_text)[1:]


def titles_by_topic(prompt: Prompt) -> str:
    """What a model would answer: a title per group, fenced as models like to do."""
    titles = [
        "Backup failures" if "backup" in group else "Friday <!channel> lunch" if "lunch" in group else "Other"
        for group in groups_in(prompt)
    ]
    return "Here you go:\n```json\n" + json.dumps({"titles": titles}) + "\n```"


def test_cluster_lists_titled_clusters_and_uploads_the_plot(bot_server: BotServer) -> None:
    gemini = bot_server.gemini
    assert gemini is not None
    gemini.reply(titles_by_topic)
    reply = bot_server.send_command("/cluster", "k=2\n" + "\n".join(LUNCH[:1] + BACKUPS + LUNCH[1:]))
    assert reply.status == 200 and reply.body == ""
    assert reply.elapsed < 3.0

    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Clustering 5 texts" in " ".join(texts_of(working.params))
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()

    listing = listing_of(update.params)
    assert clusters_in(listing) == {
        "*1. Backup failures*": BACKUPS,  # the largest cluster first
        "*2. Friday &lt;!channel&gt; lunch*": LUNCH,  # the model's title cannot ping
    }
    for piece in texts_of(update.params):
        assert not LIVE_SEQUENCE.search(piece.replace("<@U0HUMAN> asked", "")), piece
    shown = " ".join(texts_of(update.params))
    assert "k=2 as asked" in shown and "<@U0HUMAN> asked to cluster 5 texts" in shown

    (request,) = gemini.requests()  # one call titles every cluster
    assert request.action == "generateContent"
    prompt = request.json["contents"][-1]["parts"][-1]["text"]
    assert "Group 1 (3 texts)" in prompt and "Group 2 (2 texts)" in prompt
    assert all(t in prompt for t in BACKUPS + LUNCH)
    assert "JSON" in request.json["systemInstruction"]["parts"][0]["text"]

    (upload,) = bot_server.slack.uploads()
    assert upload.data.startswith(PNG) and len(upload.data) > 5_000
    assert upload.filename == "clusters.png" and upload.title == "Clusters of 5 texts"
    assert upload.channels == ["C0GENERAL"]


def seed_channel(server: BotServer, channel: str = "C0GENERAL") -> None:
    """People's messages, with a bot's message, a join and a file alone between them."""
    slack = server.slack
    slack.add_message(channel, BACKUPS[0], user="U0ANA")
    slack.add_message(channel, LUNCH[0], user="U0BEN")
    slack.add_message(
        channel, "database backup failed ALERT bot", user="U0BOT", bot_id="B0OTHER", subtype="bot_message"
    )
    slack.add_message(channel, "<@U0NEW> has joined the channel", user="U0NEW", subtype="channel_join")
    slack.add_message(channel, BACKUPS[1], user="U0ANA")
    slack.add_message(channel, "", user="U0BEN", subtype="file_share", files=[{"id": "F1"}])
    slack.add_message(channel, LUNCH[1], user="U0CAT")
    slack.add_message(channel, "<@U0ANA> the database backup job failed &amp; nobody saw", user="U0BEN")


SEEDED = [BACKUPS[0], LUNCH[0], BACKUPS[1], LUNCH[1], "@U0ANA the database backup job failed & nobody saw"]


def test_cluster_last_n_reads_the_channel_skipping_bots_and_joins(bot_server: BotServer) -> None:
    seed_channel(bot_server)
    gemini = bot_server.gemini
    assert gemini is not None
    gemini.reply(titles_by_topic)
    reply = bot_server.send_command("/cluster", "last 20")
    assert reply.status == 200 and reply.body == ""
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()

    (history,) = bot_server.slack.calls("conversations.history")
    assert history.params["channel"] == "C0GENERAL"
    assert history.token == bot_server.slack.bot_token
    assert bot_server.slack.methods()[:2] == ["conversations.history", "chat.postMessage"]

    assert isinstance(bot_server.embedder, BagOfWordsEmbedder)
    assert sorted(bot_server.embedder.embedded) == sorted(SEEDED)
    (request,) = gemini.requests()
    prompt = request.json["contents"][-1]["parts"][-1]["text"]
    assert "ALERT" not in prompt and "joined" not in prompt
    assert all(t in prompt for t in SEEDED)

    listing = listing_of(update.params)
    assert "ALERT" not in listing and "joined" not in listing
    clusters = clusters_in(listing)
    assert set(clusters) == {"*1. Backup failures*", "*2. Friday &lt;!channel&gt; lunch*"}
    assert sorted(clusters["*1. Backup failures*"]) == sorted(
        [*BACKUPS[:2], "@U0ANA the database backup job failed &amp; nobody saw"]
    )
    assert "asked to cluster the last 5 messages in this channel" in " ".join(texts_of(update.params))
    (upload,) = bot_server.slack.uploads()
    assert upload.data.startswith(PNG) and upload.channels == ["C0GENERAL"]


def test_last_n_is_capped_at_the_most_the_bot_reads(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(gemini=False, env={"GEMBOT_MAX_LINES": "3"})
    seed_channel(server)
    reply = server.send_command("/cluster", "last 500")
    assert reply.status == 200 and reply.body == ""
    (update,) = server.slack.wait_for("chat.update")
    assert isinstance(server.embedder, BagOfWordsEmbedder)
    assert sorted(server.embedder.embedded) == sorted(SEEDED[-3:])  # the three most recent
    shown = " ".join(texts_of(update.params))
    assert "the last 3 messages in this channel (asked for 500; 3 is the most I read at once)" in shown


@pytest.mark.parametrize(
    "fault",
    ["unavailable", "daily quota", "not json", "blocked"],
)
def test_when_titling_fails_the_clusters_are_numbered(bot_server: BotServer, fault: str) -> None:
    gemini = bot_server.gemini
    assert gemini is not None
    if fault == "unavailable":
        gemini.fail_next(status=503, on="generate")
    elif fault == "daily quota":
        gemini.fail_next(status=429, quota="per_day", on="generate")
    elif fault == "not json":
        gemini.reply("I would rather not name these groups.")
    else:
        gemini.block_prompt("SAFETY")
    bot_server.send_command("/cluster", "k=2\n" + "\n".join(BACKUPS + LUNCH))
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    assert clusters_in(listing_of(update.params)) == {"*Cluster 1*": BACKUPS, "*Cluster 2*": LUNCH}
    assert "No titles this time" in " ".join(texts_of(update.params))
    assert len(gemini.requests("generate")) == 1
    (upload,) = bot_server.slack.uploads()
    assert upload.data.startswith(PNG)


def test_without_gemini_the_clusters_are_numbered_and_gemini_is_not_called(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(gemini=False)
    server.send_command("/cluster", "k=2\n" + "\n".join(BACKUPS + LUNCH))
    (update,) = server.slack.wait_for("chat.update")
    server.slack.wait_for("files.completeUploadExternal")
    server.settle()
    assert clusters_in(listing_of(update.params)) == {"*Cluster 1*": BACKUPS, "*Cluster 2*": LUNCH}
    assert "No titles" not in " ".join(texts_of(update.params))
    assert server.gemini is not None and server.gemini.requests() == []
    assert len(server.slack.uploads()) == 1


def test_a_public_channel_is_joined_to_read_its_history(bot_server: BotServer) -> None:
    bot_server.slack.add_channel("C0PUBLIC", member=False)
    seed_channel(bot_server, "C0PUBLIC")
    bot_server.send_command("/cluster", "last 10 k=2", channel_id="C0PUBLIC")
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    history = bot_server.slack.calls("conversations.history")
    assert [c.response["ok"] for c in history] == [False, True]
    assert history[0].response["error"] == "not_in_channel"
    assert bot_server.slack.methods()[:4] == [
        "conversations.history",
        "conversations.join",
        "conversations.history",
        "chat.postMessage",
    ]
    assert len(clusters_in(listing_of(update.params))) == 2
    assert bot_server.slack.uploads()[0].channels == ["C0PUBLIC"]


def test_a_private_channel_the_bot_is_not_in_is_explained_privately(bot_server: BotServer) -> None:
    bot_server.slack.add_channel("G0PRIVATE", member=False, private=True)
    seed_channel(bot_server, "G0PRIVATE")
    reply = bot_server.send_command("/cluster", "last 20", channel_id="G0PRIVATE")
    (note,) = bot_server.slack.wait_for_response(reply.sent["response_url"])
    bot_server.settle()
    assert note["response_type"] == "ephemeral"
    assert "can't read this channel's messages" in note["text"] and "/invite @Gembot" in note["text"]
    assert bot_server.slack.methods() == ["conversations.history", "conversations.join", "response_url"]
    assert bot_server.gemini is not None and bot_server.gemini.requests() == []


def test_a_channel_with_too_few_messages_is_said_privately(bot_server: BotServer) -> None:
    bot_server.slack.add_message("C0GENERAL", "only one message from a person")
    bot_server.slack.add_message("C0GENERAL", "a bot", bot_id="B0X", subtype="bot_message")
    reply = bot_server.send_command("/cluster", "last 20")
    (note,) = bot_server.slack.wait_for_response(reply.sent["response_url"])
    bot_server.settle()
    assert note["response_type"] == "ephemeral" and "I found 1 message written by people" in note["text"]
    assert not bot_server.slack.calls("chat.postMessage")


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("just one text", "Usage: `/cluster`"),
        ("", "Usage: `/cluster`"),
        ("k=3\nalpha\nbeta", "`k=3` cannot work with 2 texts"),
        ("k=0\nalpha\nbeta", "`k=0` cannot work"),
        ("last 1", "needs N of at least 2"),
        ("a\nb\nc\nd\ne\nf", "takes at most 5 texts at once, and you sent 6 lines"),
    ],
)
def test_requests_that_cannot_work_are_answered_privately_in_the_ack(
    make_bot_server: MakeBotServer, typed: str, said: str
) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_LINES": "5"})
    reply = server.send_command("/cluster", typed)
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    assert said in reply.json()["text"]
    server.settle()
    assert server.slack.calls() == []
    assert server.gemini is not None and server.gemini.requests() == []


# -- the pure parts -------------------------------------------------------------------------


def test_parse_reads_options_and_leaves_texts_alone() -> None:
    assert parse("last 30 k=4", max_lines=50).last == 30
    assert parse("last 30 k=4", max_lines=50).k == 4
    assert parse("k=3 last 12", max_lines=50).k == 3
    assert parse("last", max_lines=50).last == 20
    capped = parse("last 80", max_lines=50)
    assert (capped.last, capped.asked_last, capped.problem) == (50, 80, None)
    # "last" followed by words is a text, not the option.
    words = parse("last 5 minutes were slow\nthe deploy was slow", max_lines=50)
    assert words.last is None and words.texts == ["last 5 minutes were slow", "the deploy was slow"]
    mixed = parse("k=2 first text\nsecond text\nk=3\nthird text", max_lines=50)
    assert mixed.texts == ["first text", "second text", "third text"] and mixed.k == 3


def test_history_texts_are_what_people_read() -> None:
    assert plain("<@U1|ana> see <https://x.io/a?b=1&amp;c=2|the doc> in <#C1|ops>") == (
        "@ana see the doc in #ops"
    )
    assert plain("<!here> a &lt;b&gt; <https://x.io> <!subteam^S1|@sre> <!date^1^{date}|Jan 1>") == (
        "@here a <b> https://x.io @sre Jan 1"
    )
    assert written_by_a_person({"user": "U1", "text": "hi"})
    assert written_by_a_person({"user": "U1", "text": "hi", "subtype": "thread_broadcast"})
    assert not written_by_a_person({"user": "U1", "text": "hi", "bot_id": "B1"})
    assert not written_by_a_person({"user": "U1", "text": "joined", "subtype": "channel_join"})
    assert not written_by_a_person({"text": "no author"})
