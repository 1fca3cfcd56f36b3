"""`/similar` through the running HTTP app, with the Slack and Gemini stand-ins behind it."""

from __future__ import annotations

import re
from typing import Any

from core.embeddings.base import TaskType
from core.similarity import cosine_matrix, top_pairs
from tests.support.fakes import BagOfWordsEmbedder
from tests.support.slack_fixtures import BotServer, MakeBotServer

PNG = b"\x89PNG\r\n\x1a\n"
LIVE_SEQUENCE = re.compile(r"<[!@#]")
TEXTS = [
    "the build is broken on main",
    "lunch is at noon today",
    "the quarterly report is due friday",
    "main build broken again",
    "noon lunch today in the park",
    "quarterly report due on friday",
]


def texts_of(params: dict[str, Any]) -> list[str]:
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements") or []:
            found.append(element.get("text", ""))
    return found


def sections_of(params: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in params.get("blocks") or [] if b["type"] == "section"]


def expected_pairs(texts: list[str], k: int = 10) -> list[tuple[int, int]]:
    """The pairs the engine must rank first, worked out here with the same fake embedder."""
    vectors = BagOfWordsEmbedder().embed_batch(texts, task_type=TaskType.SEMANTIC_SIMILARITY)
    return [(p.i, p.j) for p in top_pairs(cosine_matrix(vectors), k=k)]


def test_similar_answers_with_the_pairs_in_order_and_uploads_the_heatmap(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url)  # SQLite and PostgreSQL
    reply = server.send_command("/similar", "\n".join(TEXTS) + "\n\n")
    assert reply.status == 200 and reply.body == ""
    assert reply.elapsed < 3.0

    (working,) = server.slack.wait_for("chat.postMessage")
    assert "Comparing 6 texts" in " ".join(texts_of(working.params))
    (update,) = server.slack.wait_for("chat.update")
    assert update.params["ts"] == working.response["ts"]
    server.slack.wait_for("files.completeUploadExternal")
    server.settle()

    sections = sections_of(update.params)
    assert sections[0] == "*Most similar pairs*"
    pairs = sections[1:]
    assert len(pairs) == 10  # the top 10 of 15
    order = expected_pairs(TEXTS)
    assert {frozenset(p) for p in order[:3]} == {frozenset((0, 3)), frozenset((1, 4)), frozenset((2, 5))}
    for rank, (section, (i, j)) in enumerate(zip(pairs, order, strict=True), 1):
        assert section.startswith(f"*{rank}.* `")
        assert f"#{i + 1} {TEXTS[i]}" in section and f"#{j + 1} {TEXTS[j]}" in section
    scores = [float(re.search(r"`(-?\d\.\d\d)`", s).group(1)) for s in pairs]  # type: ignore[union-attr]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    shown = " ".join(texts_of(update.params))
    assert "The 10 most similar of 15 pairs" in shown and "<@U0HUMAN> compared 6 texts" in shown

    (upload,) = server.slack.uploads()
    assert upload.data.startswith(PNG) and len(upload.data) > 5_000
    assert upload.filename == "similarity.png" and upload.title == "Similarity of 6 texts"
    assert upload.channels == ["C0GENERAL"] and upload.thread_ts is None
    assert server.slack.methods() == [
        "chat.postMessage",
        "chat.update",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert isinstance(server.embedder, BagOfWordsEmbedder)
    assert sorted(server.embedder.embedded) == sorted(TEXTS)
    assert server.gemini is not None and server.gemini.requests() == []


def test_two_texts_make_one_pair(bot_server: BotServer) -> None:
    bot_server.send_command("/similar", "deploy failed\ndeploy failed twice")
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    (pair,) = sections_of(update.params)[1:]
    assert "#1 deploy failed" in pair and "#2 deploy failed twice" in pair
    assert "All pairs" in " ".join(texts_of(update.params))


def test_too_many_lines_are_refused_privately(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_LINES": "5"})
    reply = server.send_command("/similar", "\n".join(TEXTS))
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    assert "at most 5 texts" in reply.json()["text"] and "you sent 6 lines" in reply.json()["text"]
    server.settle()
    assert server.slack.calls() == []
    assert isinstance(server.embedder, BagOfWordsEmbedder) and server.embedder.embedded == []


def test_one_text_or_none_gets_the_usage(bot_server: BotServer) -> None:
    for typed in ("just one text", "  \n\n  ", ""):
        reply = bot_server.send_command("/similar", typed)
        assert reply.status == 200
        assert reply.json()["response_type"] == "ephemeral"
        assert reply.json()["text"].startswith("Usage: `/similar`")
    bot_server.settle()
    assert bot_server.slack.calls() == []


def test_texts_come_as_typed_and_cannot_ping(bot_server: BotServer) -> None:
    # What Slack sends when people type `<!channel> deploy now`, `@boss deploy & ship` (a command
    # that escapes mentions), `@here #ops deploy`: &, <, > escaped, mentions as sequences.
    bot_server.send_command(
        "/similar",
        "&lt;!channel&gt; deploy now\n<@U0BOSS|boss> deploy &amp; ship\n<!here> <#C0OPS|ops> deploy",
    )
    (update,) = bot_server.slack.wait_for("chat.update")
    assert isinstance(bot_server.embedder, BagOfWordsEmbedder)
    assert sorted(bot_server.embedder.embedded) == sorted(
        ["<!channel> deploy now", "@boss deploy & ship", "@here #ops deploy"]
    )
    for piece in texts_of(update.params):
        assert not LIVE_SEQUENCE.search(piece.replace("<@U0HUMAN> compared", "")), piece
        assert "@here" not in piece
    shown = " ".join(sections_of(update.params))
    assert "&lt;!channel&gt; deploy now" in shown and "@boss deploy &amp; ship" in shown
    assert "@\u200bhere #ops deploy" in shown


def test_where_the_bot_cannot_post_the_pairs_come_through_the_response_url(bot_server: BotServer) -> None:
    bot_server.slack.add_channel("G0PRIVATE", member=False, private=True)
    reply = bot_server.send_command("/similar", "alpha beta\nalpha gamma", channel_id="G0PRIVATE")
    url = reply.sent["response_url"]
    working, answer, note = bot_server.slack.wait_for_response(url, count=3)
    assert "Comparing 2 texts" in working["text"]
    assert answer["replace_original"] is True and "alpha" in answer["text"]
    assert note["response_type"] == "ephemeral"
    assert "couldn't attach similarity.png" in note["text"] and "/invite" in note["text"]
    assert bot_server.slack.uploads() == []


def test_prices_and_formulas_draw_as_typed(bot_server: BotServer) -> None:
    bot_server.send_command("/similar", "plan costs $5 or $10\nplan costs $x^$ now\n$$ money $$")
    (update,) = bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    assert "$5 or $10" in " ".join(sections_of(update.params))
    (upload,) = bot_server.slack.uploads()
    assert upload.data.startswith(PNG)
