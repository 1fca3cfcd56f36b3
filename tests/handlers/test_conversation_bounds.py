"""What a thread replays to Gemini is bounded: its newest turns, and of their images the newest that
fit in a number of bytes in all, read from the database and no more (SQLite and PostgreSQL); the
pure parts that decide it (`newest_within`, `conversation.bounded`, the lines that say so).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from core.store import Store, TurnImageRecord, TurnRecord
from core.store.conversations import newest_within
from core.store.schema import TurnImage
from handlers import conversation

T1 = "T0001"
THREAD = ("C1", "1700000000.000100")


def add(store: Store, role: str, words: str, *images: bytes) -> int:
    return store.add_turn(T1, *THREAD, role, words, images=[("image/png", d) for d in images])


def image_ids(store: Store) -> dict[bytes, int]:
    with store.engine.connect() as conn:
        return {bytes(data): int(i) for i, data in conn.execute(select(TurnImage.id, TurnImage.data))}


# -- the store ---------------------------------------------------------------------------------------


def test_limit_reads_the_newest_turns_oldest_first(store: Store) -> None:
    ids = [add(store, "user" if n % 2 == 0 else "model", f"turn {n}") for n in range(7)]
    store.add_turn(T1, "C1", "1700000000.999999", "user", "another thread")
    newest = store.conversation(T1, *THREAD, limit=3)
    assert [(t.id, t.text) for t in newest] == [(ids[4], "turn 4"), (ids[5], "turn 5"), (ids[6], "turn 6")]
    assert [t.id for t in store.conversation(T1, *THREAD, limit=100)] == ids
    assert [t.id for t in store.conversation(T1, *THREAD)] == ids
    assert [t.id for t in store.conversation(T1, *THREAD, limit=0)] == ids[-1:]  # at least one
    assert store.conversation(T1, "C1", "1.1", limit=3) == []


def test_the_newest_images_that_fit_are_read_and_the_rest_counted(store: Store) -> None:
    a, b, c, d, e = (bytes([n]) * size for n, size in enumerate((400, 100, 300, 200, 250)))
    add(store, "user", "first", a, b)
    add(store, "model", "ok")
    add(store, "user", "second", c)
    add(store, "model", "ok")
    add(store, "user", "third", d, e)

    # Newest first: e (250) and d (200) fit in 700, c (300) would not: c, b and a are left out,
    # though b alone would still fit: what is left out is always older than what is kept.
    turns = store.conversation(T1, *THREAD, max_image_bytes=700)
    assert [[i.data for i in t.images] for t in turns] == [[], [], [], [], [d, e]]
    assert [t.images_left_out for t in turns] == [2, 0, 1, 0, 0]
    assert [i.sha256 for i in turns[4].images] == [hashlib.sha256(x).hexdigest() for x in (d, e)]

    exact = store.conversation(T1, *THREAD, max_image_bytes=750)
    assert [[i.data for i in t.images] for t in exact] == [[], [], [c], [], [d, e]]
    none = store.conversation(T1, *THREAD, max_image_bytes=0)
    assert sum(t.images_left_out for t in none) == 5 and all(t.images == () for t in none)
    every = store.conversation(T1, *THREAD)
    assert [len(t.images) for t in every] == [2, 0, 1, 0, 2]
    assert all(t.images_left_out == 0 for t in every)
    both = store.conversation(T1, *THREAD, limit=3, max_image_bytes=750)
    assert [(t.text, [i.data for i in t.images]) for t in both] == [
        ("second", [c]),
        ("ok", []),
        ("third", [d, e]),
    ]


def test_the_bytes_of_images_left_out_are_never_read(store: Store) -> None:
    big, old, new = b"B" * 5000, b"O" * 10, b"N" * 10
    add(store, "user", "long ago", big)
    add(store, "model", "ok")
    add(store, "user", "older", old)
    add(store, "model", "ok")
    add(store, "user", "newest", new)
    ids = image_ids(store)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        turns = store.conversation(T1, *THREAD, max_image_bytes=100)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert [[i.data for i in t.images] for t in turns] == [[], [], [old], [], [new]]
    assert turns[0].images_left_out == 1
    # The sizes come from length(data), which reads no bytes out; one query reads the bytes, by id.
    reads_bytes = [
        (sql, p) for sql, p in statements if "turn_images.data" in sql.replace("length(turn_images.data)", "")
    ]
    (only,) = reads_bytes
    values = set(only[1].values() if isinstance(only[1], dict) else only[1])
    assert {ids[old], ids[new]} <= values and ids[big] not in values


# -- the pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "budget", "kept"),
    [
        ([], 10, 0),
        ([5, 5, 5], None, 3),
        ([5, 5, 5], 0, 0),
        ([5, 5, 5], 15, 3),
        ([5, 5, 5], 14, 2),
        ([1, 1, 20, 3], 10, 1),  # 20 does not fit: the two older ones are left out with it
        ([3, 20], 10, 0),  # the newest is too big: nothing older jumps the queue
        ([0, 0], 0, 2),
    ],
)
def test_newest_within(sizes: list[int], budget: int | None, kept: int) -> None:
    assert newest_within(sizes, budget) == kept


def record(role: str, words: str = "", *images: bytes, left_out: int = 0) -> TurnRecord:
    kept = tuple(TurnImageRecord("image/png", d, hashlib.sha256(d).hexdigest()) for d in images)
    return TurnRecord(
        id=0, role=role, text=words, images=kept, created_at=datetime.now(UTC), images_left_out=left_out
    )


def test_bounded_keeps_the_newest_turns_and_opens_with_a_question() -> None:
    u1, m1, u2, m2, u3, m3 = (record(r, f"{r} {n}") for n in (1, 2, 3) for r in ("user", "model"))
    short = conversation.bounded([u1, m1], max_turns=4)
    assert short == conversation.Replay(records=(u1, m1), turns_left_out=False, images_left_out=0)
    # The store was asked for one more than the bound: there were earlier turns.
    assert conversation.bounded([m1, u2, m2, u3, m3], max_turns=4).records == (u2, m2, u3, m3)
    assert conversation.bounded([m1, u2, m2, u3, m3], max_turns=4).turns_left_out
    # The newest 3 would open with an answer whose question is left out: it goes too.
    odd = conversation.bounded([u2, m2, u3, m3], max_turns=3)
    assert odd.records == (u3, m3) and odd.turns_left_out
    # A trailing question without an answer (one that could not be stored) stays.
    assert conversation.bounded([m2, u3, m3, u1], max_turns=3).records == (u3, m3, u1)


def test_bounded_counts_the_images_left_out_of_the_turns_it_keeps() -> None:
    turns = [
        record("user", "a", left_out=5),  # read only to tell that there were earlier turns
        record("model", "b"),
        record("user", "c", left_out=2),
        record("model", "d"),
        record("user", "e", b"png"),
    ]
    replay = conversation.bounded(turns, max_turns=4)
    assert replay.images_left_out == 2 and replay.turns_left_out
    # Roles alternate in what Gemini gets, the new question merged into a trailing user turn.
    asked = conversation.with_question(conversation.history(replay.records), "and?", [])
    assert [(t.role, t.text) for t in asked] == [("user", "c"), ("model", "d"), ("user", "e\n\nand?")]


def test_the_lines_that_say_what_was_left_out() -> None:
    assert conversation.files_left_out(4, 4) is None
    assert conversation.files_left_out(4, 7) == (
        "_I read the first 4 of 7 files (whoever runs me can raise GEMBOT_MAX_FILES)._"
    )
    none = conversation.Replay(records=(), turns_left_out=False, images_left_out=0)
    assert conversation.replay_notes(none, max_image_bytes=20_000_000) == []
    both = conversation.Replay(records=(record("user"),) * 20, turns_left_out=True, images_left_out=3)
    assert conversation.replay_notes(both, max_image_bytes=20_000_000) == [
        "_Earlier messages in this thread were left out: I read the last 20 turns (whoever runs me can "
        "raise GEMBOT_MAX_THREAD_TURNS)._",
        "_3 earlier images were left out (over 20 MB in all; whoever runs me can raise "
        "GEMBOT_MAX_THREAD_IMAGE_BYTES)._",
    ]
    one = conversation.Replay(records=(), turns_left_out=False, images_left_out=1)
    assert conversation.replay_notes(one, max_image_bytes=2_500_000) == [
        "_1 earlier image was left out (over 2.5 MB in all; whoever runs me can raise "
        "GEMBOT_MAX_THREAD_IMAGE_BYTES)._"
    ]
