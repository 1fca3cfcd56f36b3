"""Questions about images, by mention and by DM, through the running HTTP app and both stand-ins.

What is asserted is what reached Slack (the "working" message, the answer replacing it in the
thread, the downloads and the token they carried) and what reached Gemini (the image bytes and
MIME type inline, the earlier turns of the thread).
"""

from __future__ import annotations

import hashlib
import io
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from core.store import TurnImageRecord, TurnRecord
from handlers import conversation
from tests.support.gemini import GeminiStandIn, RecordedRequest
from tests.support.gemini_support import decode_base64, image_bytes
from tests.support.image_bombs import gif_bomb
from tests.support.slack_fixtures import BotServer, MakeBotServer

BOT = "U0GEMBOT"
CHANNEL = "C0GENERAL"
DM = "D0HUMAN"
_clock = itertools.count(1)


def next_ts() -> str:
    return f"1700000{next(_clock):03d}.000100"


def mention(text: str, *, files: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    ts = extra.pop("ts", None) or next_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": text,
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
        **extra,
    }
    if files:
        event["files"] = files
        event["upload"] = False
    return event


def direct(text: str, *, files: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    ts = extra.pop("ts", None) or next_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": "U0HUMAN",
        "text": text,
        "ts": ts,
        "channel": DM,
        "channel_type": "im",
        "event_ts": ts,
        **extra,
    }
    if files:
        event.update(subtype="file_share", files=files, upload=True)
    return event


def texts_of(params: dict[str, Any]) -> str:
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:  # a markdown block's text is a string, a section's an object
            shown = block["text"]
            found.append(shown if isinstance(shown, str) else shown["text"])
        for element in block.get("elements") or []:
            found.append(element.get("text", ""))
    return " ".join(found)


def blobs(content: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(mime type, bytes) of every inline image of one `contents` entry, as sent on the wire."""
    found = []
    for part in content["parts"]:
        blob = part.get("inlineData") or part.get("inline_data")
        if blob is not None:
            mime = blob.get("mimeType") or blob.get("mime_type")
            found.append((mime, decode_base64(blob["data"])))
    return found


def words(content: dict[str, Any]) -> str:
    return " ".join(p["text"] for p in content["parts"] if "text" in p)


def echo(question: str, *images: bytes, mime: str = "image/png") -> str:
    """The stand-in's default answer to a question with images."""
    described = [f"[image {mime} {len(d)} bytes sha256:{hashlib.sha256(d).hexdigest()[:12]}]" for d in images]
    return " ".join([f"echo: {question}".rstrip(), *described])


def generations(gemini: GeminiStandIn | None) -> list[RecordedRequest]:
    assert gemini is not None
    return gemini.requests("generate")


# -- mentions ------------------------------------------------------------------------------------


def test_a_mention_with_an_image_is_answered_in_its_thread(bot_server: BotServer) -> None:
    slack, gemini = bot_server.slack, bot_server.gemini
    assert gemini is not None
    gemini.latency(3.5, on="generate")
    png = image_bytes("PNG", size=(8, 6))
    file = slack.add_file(png, "chart.png", "image/png")
    event = mention(f"<@{BOT}> What is in this chart?", files=[file])

    reply = bot_server.send_event(event)
    assert reply.status == 200 and reply.elapsed < 3.0  # acknowledged before Gemini answers

    (working,) = slack.wait_for("chat.postMessage")
    assert working.params["channel"] == CHANNEL and working.params["thread_ts"] == event["ts"]
    assert "Looking at the image" in texts_of(working.params)
    (streamed,) = slack.wait_for_streams(timeout=15)
    answer = echo("What is in this chart?", png)
    assert streamed["text"] == answer and streamed["thread_ts"] == event["ts"]
    # The answer streamed into its own message; the "working" one was removed once it began.
    (delete,) = slack.calls("chat.delete")
    assert delete.params["ts"] == working.response["ts"]
    (message,) = slack.messages(CHANNEL)
    assert message["text"] == answer and message["thread_ts"] == event["ts"]

    (download,) = slack.calls("download")
    assert download.token == slack.bot_token  # url_private_download, with the bot token
    (request,) = generations(gemini)
    (content,) = request.json["contents"]
    assert content["role"] == "user"
    assert blobs(content) == [("image/png", png)]  # the exact bytes, inline
    assert words(content) == "What is in this chart?"  # the bot's own mention taken out
    assert "Gembot" in str(request.json.get("systemInstruction"))


def test_a_gif_goes_to_gemini_as_png(bot_server: BotServer) -> None:
    gif = image_bytes("GIF", size=(7, 5))
    file = bot_server.slack.add_file(gif, "loop.gif", "image/gif")
    bot_server.send_event(mention(f"<@{BOT}> what is this?", files=[file]))
    bot_server.slack.wait_for("chat.stopStream")
    ((mime, data),) = blobs(generations(bot_server.gemini)[0].json["contents"][0])
    assert mime == "image/png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as converted:
        assert converted.format == "PNG" and converted.size == (7, 5)


def test_a_thread_carries_the_conversation_on_across_a_restart(
    make_bot_server: MakeBotServer, database_url: str
) -> None:
    server = make_bot_server(database_url=database_url)
    slack = server.slack
    png = image_bytes("PNG", size=(6, 6))
    first = mention(f"<@{BOT}> Describe this", files=[slack.add_file(png, "cat.png", "image/png")])
    server.send_event(first)
    slack.wait_for("chat.stopStream")
    first_answer = echo("Describe this", png)

    server.send_event(mention(f"<@{BOT}>   and its colour?", thread_ts=first["ts"]))
    slack.wait_for("chat.stopStream", count=2)
    second = generations(server.gemini)[1].json["contents"]
    assert [c["role"] for c in second] == ["user", "model", "user"]
    assert blobs(second[0]) == [("image/png", png)] and words(second[0]) == "Describe this"
    assert words(second[1]) == first_answer
    assert blobs(second[2]) == [] and words(second[2]) == "and its colour?"
    assert len(slack.calls("download")) == 1  # the image came from the database, not from Slack

    server.restart()
    server.send_event(mention(f"<@{BOT}> Thanks! Anything else?", thread_ts=first["ts"]))
    slack.wait_for("chat.stopStream")  # the restart cleared the record of calls
    third = generations(server.gemini)[2].json["contents"]
    assert [c["role"] for c in third] == ["user", "model", "user", "model", "user"]
    assert blobs(third[0]) == [("image/png", png)]
    assert words(third[3]) == "echo: and its colour?"
    assert not slack.calls("download")
    replies = [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == first["ts"]]
    assert [m["text"] for m in replies] == [
        first_answer,
        "echo: and its colour?",
        "echo: Thanks! Anything else?",
    ]
    assert server.deps is not None
    turns = server.deps.store.conversation(slack.team_id, CHANNEL, first["ts"])
    assert [t.role for t in turns] == ["user", "model"] * 3
    assert turns[0].images[0].data == png


def test_a_mention_in_another_thread_starts_afresh(bot_server: BotServer) -> None:
    first = mention(f"<@{BOT}> one")
    bot_server.send_event(first)
    bot_server.slack.wait_for("chat.stopStream")
    bot_server.send_event(mention(f"<@{BOT}> two"))  # a new top-level message
    bot_server.slack.wait_for("chat.stopStream", count=2)
    assert len(generations(bot_server.gemini)[1].json["contents"]) == 1


def test_several_images_go_in_the_order_they_were_attached(bot_server: BotServer) -> None:
    pngs = [image_bytes("PNG", size=(3 + n, 3)) for n in range(3)]
    files = [bot_server.slack.add_file(p, f"p{n}.png", "image/png") for n, p in enumerate(pngs)]
    bot_server.send_event(mention(f"<@{BOT}> compare them", files=files))
    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Looking at 3 images" in texts_of(working.params)
    bot_server.slack.wait_for("chat.stopStream")
    assert blobs(generations(bot_server.gemini)[0].json["contents"][0]) == [("image/png", p) for p in pngs]


def test_a_question_without_an_image_is_answered_too(bot_server: BotServer) -> None:
    bot_server.send_event(mention(f"Hey <@{BOT}|gembot>, what is a haiku?"))
    (working,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Thinking" in texts_of(working.params)
    (streamed,) = bot_server.slack.wait_for_streams()
    assert "echo: Hey , what is a haiku?" in texts_of(streamed)
    assert not bot_server.slack.calls("download")


def test_a_bare_mention_gets_help_and_no_gemini_call(bot_server: BotServer) -> None:
    event = mention(f"<@{BOT}>")
    bot_server.send_event(event)
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    bot_server.settle()
    assert post.params["thread_ts"] == event["ts"]
    assert "mention me with a question and attach one or more images" in post.params["text"]
    assert generations(bot_server.gemini) == []


def test_the_answer_cannot_ping_anyone(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.reply("Tell <!channel> and <@U0BOSS> about **this**")
    bot_server.send_event(mention(f"<@{BOT}> hi"))
    (streamed,) = bot_server.slack.wait_for_streams()
    shown = texts_of(streamed)
    assert "<!channel>" not in shown and "<@U0BOSS>" not in shown
    assert "&lt;!channel&gt;" in shown and "*this*" in shown


# -- direct messages -----------------------------------------------------------------------------


def test_a_dm_with_an_image_is_answered_in_its_thread(bot_server: BotServer) -> None:
    slack = bot_server.slack
    jpeg = image_bytes("JPEG", size=(10, 10))
    event = direct("What's in the photo?", files=[slack.add_file(jpeg, "photo.jpg", "image/jpeg")])
    assert bot_server.send_event(event).status == 200
    slack.wait_for("chat.stopStream")
    (message,) = slack.messages(DM)
    assert message["thread_ts"] == event["ts"]
    assert message["text"] == echo("What's in the photo?", jpeg, mime="image/jpeg")
    assert blobs(generations(bot_server.gemini)[0].json["contents"][0]) == [("image/jpeg", jpeg)]


def test_any_message_in_a_dm_thread_carries_it_on_and_a_new_message_starts_afresh(
    bot_server: BotServer,
) -> None:
    slack = bot_server.slack
    png = image_bytes("PNG", size=(4, 9))
    first = direct("", files=[slack.add_file(png, "shot.png", "image/png")])  # an image, no words
    bot_server.send_event(first)
    slack.wait_for("chat.stopStream")
    opening = generations(bot_server.gemini)[0].json["contents"]
    assert blobs(opening[0]) == [("image/png", png)] and words(opening[0]) == ""

    bot_server.send_event(direct("what colour is the top left pixel?", thread_ts=first["ts"]))
    slack.wait_for("chat.stopStream", count=2)
    follow_up = generations(bot_server.gemini)[1].json["contents"]
    assert [c["role"] for c in follow_up] == ["user", "model", "user"]
    assert blobs(follow_up[0]) == [("image/png", png)]
    assert words(follow_up[2]) == "what colour is the top left pixel?"

    bot_server.send_event(direct("A new question"))
    slack.wait_for("chat.stopStream", count=3)
    assert len(generations(bot_server.gemini)[2].json["contents"]) == 1


# -- files that are not what they should be ----------------------------------------------------


def test_slacks_sign_in_page_is_not_taken_for_the_image(bot_server: BotServer) -> None:
    # A file the token may not read (no files:read): Slack answers with its HTML sign-in page.
    file = bot_server.slack.add_file(image_bytes("PNG"), "secret.png", "image/png")
    bot_server.slack.hide_file(file["id"])
    bot_server.send_event(mention(f"<@{BOT}> what is this?", files=[file]))
    (update,) = bot_server.slack.wait_for("chat.update")
    (download,) = bot_server.slack.calls("download")
    assert download.token == bot_server.slack.bot_token
    shown = texts_of(update.params)
    assert "sign-in page instead of secret.png" in shown and "files:read" in shown
    assert generations(bot_server.gemini) == []


def test_a_file_that_is_not_an_image_is_refused(bot_server: BotServer) -> None:
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    file = bot_server.slack.add_file(pdf, "report.png", "image/png")  # the name and type lie
    bot_server.send_event(direct("summarise this", files=[file]))
    (update,) = bot_server.slack.wait_for("chat.update")
    assert "report.png is not an image" in texts_of(update.params)
    assert generations(bot_server.gemini) == []


def test_an_oversized_image_is_refused_before_it_is_downloaded(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_IMAGE_BYTES": "100000"})
    big = image_bytes("PNG", size=(300, 300), noise=True)
    assert len(big) > 100_000
    file = server.slack.add_file(big, "huge.png", "image/png")
    server.send_event(mention(f"<@{BOT}> look", files=[file]))
    (update,) = server.slack.wait_for("chat.update")
    assert "huge.png is 0.3 MB; the limit is 0.1 MB" in texts_of(update.params)
    assert not server.slack.calls("download")

    # Without a size in the event, the download itself stops at the limit.
    unsized = {k: v for k, v in server.slack.add_file(big, "huge2.png", "image/png").items() if k != "size"}
    server.send_event(mention(f"<@{BOT}> look again", files=[unsized]))
    updates = server.slack.wait_for("chat.update", count=2)
    assert "huge2.png is larger than the limit of 0.1 MB" in texts_of(updates[1].params)
    assert generations(server.gemini) == []


# Past Pillow's own MAX_IMAGE_PIXELS, `Image.open` warns (no filter is set to silence it: that would be
# process-wide); the header's size is refused right after.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_in_one_line_and_gemini_never_called(bot_server: BotServer) -> None:
    bomb = gif_bomb(12_000, 12_000)  # 144 million pixels in about 55 KB
    file = bot_server.slack.add_file(bomb, "bomb.gif", "image/gif")
    bot_server.send_event(mention(f"<@{BOT}> what is this?", files=[file]))
    (update,) = bot_server.slack.wait_for("chat.update")
    assert update.params["text"] == (
        ":warning: bomb.gif is an image of 12,000 × 12,000 pixels; the limit is 50,000,000 pixels."
    )
    assert len(bot_server.slack.calls("download")) == 1
    bot_server.settle()
    assert generations(bot_server.gemini) == []


def test_the_pixel_bound_is_a_setting(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_IMAGE_PIXELS": "1000000"})
    wide = server.slack.add_file(gif_bomb(1_001, 1_000), "wide.gif", "image/gif")
    server.send_event(mention(f"<@{BOT}> what is this?", files=[wide]))
    (update,) = server.slack.wait_for("chat.update")
    assert update.params["text"] == (
        ":warning: wide.gif is an image of 1,001 × 1,000 pixels; the limit is 1,000,000 pixels."
    )
    server.settle()
    assert generations(server.gemini) == []


def test_a_file_stub_is_completed_through_files_info(bot_server: BotServer) -> None:
    png = image_bytes("PNG")
    full = bot_server.slack.add_file(png, "stub.png", "image/png")
    stub = {"id": full["id"], "mode": "file_access", "file_access": "check_file_info"}
    bot_server.send_event(mention(f"<@{BOT}> and this?", files=[stub]))
    bot_server.slack.wait_for("chat.stopStream")
    assert bot_server.slack.last("files.info").params["file"] == full["id"]
    assert blobs(generations(bot_server.gemini)[0].json["contents"][0]) == [("image/png", png)]


def test_a_csv_in_a_mention_is_sent_to_the_dm(bot_server: BotServer) -> None:
    file = bot_server.slack.add_file(b"text,label\na,b\n", "labels.csv", "text/csv")
    bot_server.send_event(mention(f"<@{BOT}> import", files=[file]))
    (post,) = bot_server.slack.wait_for("chat.postMessage")
    assert "Send CSV files to me in a direct message" in post.params["text"]
    bot_server.settle()
    assert generations(bot_server.gemini) == [] and not bot_server.slack.calls("download")


# -- what is not answered ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(direct("my own words", user=BOT), id="own-user"),
        pytest.param(direct("my own words", bot_id="B0GEMBOT"), id="own-bot-id"),
        pytest.param(direct("beep", subtype="bot_message", bot_id="B0OTHER"), id="other-bot"),
        pytest.param(direct("beep", bot_id="B0OTHER", bot_profile={"id": "B0OTHER"}), id="bot-as-user"),
        pytest.param(
            direct(
                "", subtype="message_changed", message={"type": "message", "user": "U0HUMAN", "text": "x"}
            ),
            id="message_changed",
        ),
        pytest.param(direct("", subtype="message_deleted", deleted_ts="1700000000.000001"), id="deleted"),
        pytest.param(mention(f"<@{BOT}> beep", user="U0OTHERBOT", bot_id="B0OTHER"), id="bot-mention"),
        pytest.param(mention(f"<@{BOT}> hi", channel=DM), id="mention-in-a-dm"),  # the DM answers
    ],
)
def test_bots_own_messages_edits_and_deletions_are_ignored(
    bot_server: BotServer, event: dict[str, Any]
) -> None:
    reply = bot_server.send_event(event)
    assert reply.status == 200  # acknowledged, so that Slack does not send it again
    bot_server.settle()
    assert bot_server.slack.calls() == []
    assert generations(bot_server.gemini) == []


# -- without Gemini --------------------------------------------------------------------------------


def test_without_gemini_the_thread_is_told_and_nothing_is_downloaded(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(gemini=False)
    file = server.slack.add_file(image_bytes("PNG"), "cat.png", "image/png")
    event = mention(f"<@{BOT}> what is this?", files=[file])
    server.send_event(event)
    (post,) = server.slack.wait_for("chat.postMessage")
    server.settle()
    assert post.params["thread_ts"] == event["ts"]
    assert "Gemini is not configured" in post.params["text"]
    assert [c.method for c in server.slack.calls()] == ["chat.postMessage"]
    assert generations(server.gemini) == []


def test_questions_in_one_thread_are_answered_one_at_a_time(bot_server: BotServer) -> None:
    assert bot_server.gemini is not None
    bot_server.gemini.latency(1.0, on="generate")
    first = mention(f"<@{BOT}> first")
    bot_server.send_event(first)
    bot_server.send_event(mention(f"<@{BOT}> second", thread_ts=first["ts"]))
    bot_server.slack.wait_for("chat.stopStream", count=2)
    # Whichever came second saw the first's question and answer.
    later = generations(bot_server.gemini)[1].json["contents"]
    assert [c["role"] for c in later] == ["user", "model", "user"]


# -- the pure parts --------------------------------------------------------------------------------


def test_the_bots_own_mention_is_taken_out_of_the_question() -> None:
    assert conversation.question_of(f"<@{BOT}> what is  this?", BOT) == "what is this?"
    assert conversation.question_of(f"hey <@{BOT}|gembot>, ask <@U0OTHER>", BOT) == "hey , ask <@U0OTHER>"
    assert conversation.question_of(f"<@{BOT}>", BOT) == ""
    assert conversation.question_of(f"<@{BOT}> hi", None) == f"<@{BOT}> hi"


def test_stored_turns_of_the_same_role_in_a_row_are_merged() -> None:
    def record(role: str, words: str, *images: bytes) -> TurnRecord:
        kept = tuple(TurnImageRecord("image/png", d, hashlib.sha256(d).hexdigest()) for d in images)
        return TurnRecord(id=0, role=role, text=words, images=kept, created_at=datetime.now(UTC))

    turns = conversation.history(
        [
            record("user", "look", b"a"),
            record("user", "", b"b"),
            record("model", "ok"),
            record("user", "and?"),
        ]
    )
    assert [(t.role, t.text, [i.data for i in t.images]) for t in turns] == [
        ("user", "look", [b"a", b"b"]),
        ("model", "ok", []),
        ("user", "and?", []),
    ]
    asked = conversation.with_question(turns, "more", [])
    assert [(t.role, t.text) for t in asked] == [("user", "look"), ("model", "ok"), ("user", "and?\n\nmore")]
