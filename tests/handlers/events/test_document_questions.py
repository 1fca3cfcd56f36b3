"""Questions about documents (PDFs and text files), by mention and by DM, through both stand-ins.

What is asserted is what reached Gemini (the document's bytes with its MIME type, inline or as a
Files API upload referred to by URI, and again in a follow-up) and what a person is told when a
file is not what it claims.
"""

from __future__ import annotations

from typing import Any

from tests.handlers.events.test_image_questions import (
    BOT,
    CHANNEL,
    DM,
    blobs,
    direct,
    generations,
    mention,
    texts_of,
    words,
)
from tests.support.slack_fixtures import BotServer, MakeBotServer

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NOTES = "Meeting notes\n- ship on Friday\n- café budget: 12 €\n".encode()


def file_refs(content: dict[str, Any]) -> list[tuple[str, str]]:
    """(MIME type, URI) of every Files API part of one `contents` entry, as sent on the wire."""
    found = []
    for part in content["parts"]:
        ref = part.get("fileData") or part.get("file_data")
        if ref is not None:
            found.append(
                (ref.get("mimeType") or ref.get("mime_type"), ref.get("fileUri") or ref.get("file_uri"))
            )
    return found


def test_a_mention_with_a_pdf_sends_the_pdf_inline(bot_server: BotServer) -> None:
    slack = bot_server.slack
    event = mention(f"<@{BOT}> summarise this", files=[slack.add_file(PDF, "report.pdf", "application/pdf")])
    bot_server.send_event(event)
    (working,) = slack.wait_for("chat.postMessage")
    assert "Reading the file" in texts_of(working.params)
    slack.wait_for("chat.stopStream")
    (content,) = generations(bot_server.gemini)[0].json["contents"]
    assert blobs(content) == [("application/pdf", PDF)] and words(content) == "summarise this"
    (message,) = slack.messages(CHANNEL)
    assert message["thread_ts"] == event["ts"] and "[file application/pdf" in message["text"]


def test_text_files_go_as_text_plain(bot_server: BotServer) -> None:
    slack = bot_server.slack
    files = [
        slack.add_file(b"\xef\xbb\xbf" + NOTES, "notes.txt", "text/plain"),  # the BOM is dropped
        slack.add_file(b"# Plan\n\n*bold*\n", "plan.md", "text/markdown"),
        slack.add_file(b"text,label\na,b\n", "table.csv", "text/csv"),
    ]
    bot_server.send_event(mention(f"<@{BOT}> what do these say?", files=files))
    slack.wait_for("chat.stopStream")
    (content,) = generations(bot_server.gemini)[0].json["contents"]
    assert blobs(content) == [
        ("text/plain", NOTES),
        ("text/plain", b"# Plan\n\n*bold*\n"),
        ("text/plain", b"text,label\na,b\n"),
    ]


def test_a_large_pdf_goes_through_the_files_api(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_INLINE_IMAGE_LIMIT": "2000"})
    big = PDF + b"%" + b"x" * 5000 + b"\n"
    server.send_event(
        mention(f"<@{BOT}> read it", files=[server.slack.add_file(big, "big.pdf", "application/pdf")])
    )
    server.slack.wait_for("chat.stopStream")
    assert server.gemini is not None
    (stored,) = server.gemini.files()
    assert stored.mime_type == "application/pdf" and stored.data == big
    (content,) = generations(server.gemini)[0].json["contents"]
    assert blobs(content) == [] and file_refs(content) == [("application/pdf", stored.uri)]


def test_a_follow_up_in_the_thread_replays_the_document(bot_server: BotServer) -> None:
    slack = bot_server.slack
    first = mention(f"<@{BOT}> summarise", files=[slack.add_file(PDF, "report.pdf", "application/pdf")])
    bot_server.send_event(first)
    slack.wait_for("chat.stopStream")
    bot_server.send_event(mention(f"<@{BOT}> and the date?", thread_ts=first["ts"]))
    slack.wait_for("chat.stopStream", count=2)
    second = generations(bot_server.gemini)[1].json["contents"]
    assert [c["role"] for c in second] == ["user", "model", "user"]
    assert blobs(second[0]) == [("application/pdf", PDF)] and words(second[2]) == "and the date?"
    assert len(slack.calls("download")) == 1  # from the database, not from Slack


def test_a_dm_with_a_pdf_is_answered(bot_server: BotServer) -> None:
    slack = bot_server.slack
    bot_server.send_event(direct("what is this?", files=[slack.add_file(PDF, "r.pdf", "application/pdf")]))
    slack.wait_for("chat.stopStream")
    assert blobs(generations(bot_server.gemini)[0].json["contents"][0]) == [("application/pdf", PDF)]
    assert slack.messages(DM)


def test_a_csv_with_a_question_is_a_document_and_with_a_word_a_job(bot_server: BotServer) -> None:
    slack = bot_server.slack
    table = b"text,label\nmy card was charged twice,billing\n"
    bot_server.send_event(
        direct("which label is most common?", files=[slack.add_file(table, "t.csv", "text/csv")])
    )
    slack.wait_for("chat.stopStream")
    assert blobs(generations(bot_server.gemini)[0].json["contents"][0]) == [("text/plain", table)]
    bot_server.send_event(
        mention(f"<@{BOT}> how many rows?", files=[slack.add_file(table, "u.csv", "text/csv")])
    )
    slack.wait_for("chat.stopStream", count=2)
    assert blobs(generations(bot_server.gemini)[1].json["contents"][0]) == [("text/plain", table)]


def _refusal(server: BotServer) -> str:
    (update,) = server.slack.wait_for("chat.update")
    shown = texts_of(update.params)
    server.settle()
    assert generations(server.gemini) == []
    return shown


def test_a_fake_pdf_is_refused_in_one_line(bot_server: BotServer) -> None:
    file = bot_server.slack.add_file(b"<html>not a pdf</html>", "fake.pdf", "application/pdf")
    bot_server.send_event(mention(f"<@{BOT}> summarise", files=[file]))
    shown = _refusal(bot_server)
    assert "fake.pdf is not a PDF" in shown and "\n" not in shown.strip()


def test_text_that_is_not_utf8_is_refused(bot_server: BotServer) -> None:
    file = bot_server.slack.add_file("café".encode("latin-1") + b"\xff\xfe", "old.txt", "text/plain")
    bot_server.send_event(mention(f"<@{BOT}> read", files=[file]))
    assert "old.txt is not UTF-8 text" in _refusal(bot_server)


def test_an_unsupported_type_is_refused_naming_what_is_read(bot_server: BotServer) -> None:
    file = bot_server.slack.add_file(b"PK\x03\x04 zip bytes", "deck.pptx", "application/vnd.ms-powerpoint")
    bot_server.send_event(mention(f"<@{BOT}> read", files=[file]))
    shown = _refusal(bot_server)
    assert "deck.pptx is not an image" in shown and "PDF, .txt, .md and .csv" in shown
