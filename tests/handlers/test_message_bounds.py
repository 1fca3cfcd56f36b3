"""Bounds on what a message and a thread pile up, through the running HTTP app and both stand-ins:
a message's first GEMBOT_MAX_FILES files are read, a question replays the thread's latest
GEMBOT_MAX_THREAD_TURNS turns and GEMBOT_MAX_THREAD_IMAGE_BYTES of their images, and the answer
says in a line what was left out. What is asserted is what reached Slack and what reached Gemini.
"""

from __future__ import annotations

from tests.handlers.events.test_image_questions import (
    BOT,
    CHANNEL,
    blobs,
    direct,
    echo,
    generations,
    mention,
    texts_of,
    words,
)
from tests.support.gemini_support import image_bytes
from tests.support.slack_fixtures import BotServer, MakeBotServer


def seed(server: BotServer, thread_ts: str, *turns: tuple[str, str, bytes | None]) -> None:
    """Store earlier turns of a thread, as if they had been asked and answered."""
    assert server.deps is not None
    for role, said, image in turns:
        images = [("image/png", image)] if image else []
        server.deps.store.add_turn(server.team, CHANNEL, thread_ts, role, said, images=images)


# -- files per message -------------------------------------------------------------------------------


def test_a_mention_with_more_files_than_the_bound_reads_the_first_ones(bot_server: BotServer) -> None:
    slack = bot_server.slack
    pngs = [image_bytes("PNG", size=(3 + n, 4)) for n in range(7)]
    files = [slack.add_file(p, f"p{n}.png", "image/png") for n, p in enumerate(pngs)]
    bot_server.send_event(mention(f"<@{BOT}> compare them", files=files))
    (working,) = slack.wait_for("chat.postMessage")
    assert "Looking at 4 images" in texts_of(working.params)
    (update,) = slack.wait_for_streams()
    assert len(slack.calls("download")) == 4
    (request,) = generations(bot_server.gemini)
    assert blobs(request.json["contents"][0]) == [("image/png", p) for p in pngs[:4]]
    shown = texts_of(update)
    assert echo("compare them", *pngs[:4]) in shown
    assert "I read the first 4 of 7 files (whoever runs me can raise GEMBOT_MAX_FILES)" in shown


def test_within_the_bounds_nothing_is_said(bot_server: BotServer) -> None:
    png = image_bytes("PNG")
    bot_server.send_event(
        mention(f"<@{BOT}> what?", files=[bot_server.slack.add_file(png, "a.png", "image/png")])
    )
    (update,) = bot_server.slack.wait_for_streams()
    assert "left out" not in texts_of(update) and "I read the first" not in texts_of(update)
    assert [b.get("type") for b in update.get("blocks") or []].count("context") == 0


def test_a_dm_with_more_csv_files_than_the_bound_imports_the_first_ones(
    make_bot_server: MakeBotServer,
) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_FILES": "1"})
    slack = server.slack
    first = slack.add_file(b"text,label\nhello there,greeting\n", "one.csv", "text/csv")
    second = slack.add_file(b"text,label\nbye now,farewell\n", "two.csv", "text/csv")
    server.send_event(direct("import", files=[first, second]))
    slack.wait_for("chat.update")
    server.settle()
    posted = [texts_of(c.params) for c in slack.calls("chat.postMessage")]
    assert any("I read the first 1 of 2 files" in p for p in posted), posted
    assert len(slack.calls("download")) == 1
    assert server.deps is not None
    assert server.deps.store.get_set(server.team, "default").label_counts == {"greeting": 1}


# -- the thread replayed ---------------------------------------------------------------------------------


def test_a_long_thread_replays_its_latest_turns_and_says_so(make_bot_server: MakeBotServer) -> None:
    server = make_bot_server(env={"GEMBOT_MAX_THREAD_TURNS": "4"})
    first = mention(f"<@{BOT}> start")
    seed(
        server,
        first["ts"],
        *[(role, f"{role} {n}", None) for n in range(1, 4) for role in ("user", "model")],
    )
    server.send_event(mention(f"<@{BOT}> and now?", thread_ts=first["ts"]))
    (update,) = server.slack.wait_for_streams()
    (request,) = generations(server.gemini)
    contents = request.json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert [words(c) for c in contents] == ["user 2", "model 2", "user 3", "model 3", "and now?"]
    assert (
        "Earlier messages in this thread were left out: I read the last 4 turns (whoever runs me can "
        "raise GEMBOT_MAX_THREAD_TURNS)"
    ) in texts_of(update)
    # The bound is on what is replayed: the thread itself keeps every turn until they are pruned.
    assert server.deps is not None
    assert len(server.deps.store.conversation(server.team, CHANNEL, first["ts"])) == 8


def test_earlier_images_past_the_byte_bound_are_left_out_but_the_questions_own_go(
    make_bot_server: MakeBotServer,
) -> None:
    a, b, c = (image_bytes("PNG", size=(30, 30), noise=True) for _ in range(3))
    budget = len(c) + len(b) - 1  # the newest fits, the one before does not
    server = make_bot_server(
        env={"GEMBOT_MAX_THREAD_TURNS": "4", "GEMBOT_MAX_THREAD_IMAGE_BYTES": str(budget)}
    )
    first = mention(f"<@{BOT}> start")
    seed(
        server,
        first["ts"],
        ("user", "first", a),
        ("model", "one", None),
        ("user", "second", b),
        ("model", "two", None),
        ("user", "third", c),
        ("model", "three", None),
    )
    own = image_bytes("PNG", size=(60, 60), noise=True)
    assert len(own) > budget
    file = server.slack.add_file(own, "new.png", "image/png")
    server.send_event(mention(f"<@{BOT}> and this one?", thread_ts=first["ts"], files=[file]))
    (update,) = server.slack.wait_for_streams()
    contents = generations(server.gemini)[0].json["contents"]
    assert [words(x) for x in contents] == ["second", "two", "third", "three", "and this one?"]
    assert [blobs(x) for x in contents] == [[], [], [("image/png", c)], [], [("image/png", own)]]
    shown = texts_of(update)
    assert "I read the last 4 turns" in shown
    assert f"1 earlier image was left out (over {budget / 1e6:g} MB in all" in shown
