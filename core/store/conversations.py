"""Conversations held in Slack threads: their turns in order, each with the images it brought.

The turns are kept here rather than re-read from Slack, so a later question in a thread sees the
images of the first one without downloading them again, and without `files:read` on old files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import validation
from core.store.records import TurnImageRecord, TurnRecord
from core.store.schema import CHANNEL_ID_LENGTH, TS_LENGTH, ConversationTurn, TurnImage

ROLES = ("user", "model")


def thread_key(team_id: str, channel_id: str, thread_ts: str) -> tuple[str, str, str]:
    """The checked (team, channel, thread) a conversation is filed under."""
    return (
        validation.team_id(team_id),
        validation.clean(channel_id, what="channel id", limit=CHANNEL_ID_LENGTH),
        validation.clean(thread_ts, what="thread timestamp", limit=TS_LENGTH),
    )


def new_turn(
    key: tuple[str, str, str], role: str, text: str, images: Sequence[tuple[str, bytes]]
) -> tuple[ConversationTurn, list[TurnImage]]:
    """Checked rows for a turn and its images, built before any transaction opens."""
    if role not in ROLES:
        raise InvalidInput(f"a turn's role is 'user' or 'model', not {role!r}")
    if not text.strip() and not images:
        raise InvalidInput("a turn needs text or at least one image")
    turn = ConversationTurn(
        team_id=key[0],
        channel_id=key[1],
        thread_ts=key[2],
        role=role,
        # PostgreSQL refuses NUL in text.
        text=text.replace("\x00", "\ufffd"),
    )
    rows = []
    for mime_type, data in images:
        if not data:
            raise InvalidInput("an image of a turn is empty")
        rows.append(
            TurnImage(
                mime_type=validation.clean(mime_type, what="image MIME type", limit=100),
                data=bytes(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    return turn, rows


def add(s: Session, turn: ConversationTurn, images: list[TurnImage]) -> int:
    s.add(turn)
    s.flush()
    for image in images:
        image.turn_id = turn.id
    s.add_all(images)
    s.flush()
    return turn.id


def newest_within(sizes: Sequence[int], budget: int | None) -> int:
    """How many of the images of `sizes` (bytes each, oldest first) fit in `budget` bytes in all,
    taken newest first (None: no bound, all of them).

    Taking stops at the first image that does not fit, so that what is left out is always older
    than what is kept: a thread never shows Gemini an old image while hiding a newer one.
    """
    if budget is None:
        return len(sizes)
    spent = 0
    kept = 0
    for size in reversed(sizes):
        if spent + size > budget:
            break
        spent += size
        kept += 1
    return kept


def turns(
    s: Session, key: tuple[str, str, str], *, limit: int | None = None, max_image_bytes: int | None = None
) -> list[TurnRecord]:
    """The thread's turns, oldest first: its newest `limit` (None: all), with the newest images
    that fit in `max_image_bytes` in all (None: all); the bytes of the others are never read."""
    query = (
        select(ConversationTurn)
        .where(
            ConversationTurn.team_id == key[0],
            ConversationTurn.channel_id == key[1],
            ConversationTurn.thread_ts == key[2],
        )
        .order_by(ConversationTurn.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = list(reversed(s.scalars(query).all()))
    if not rows:
        return []
    # The sizes first (no image bytes), so that only the images kept are read.
    sizes = s.execute(
        select(TurnImage.id, TurnImage.turn_id, func.length(TurnImage.data))
        .where(TurnImage.turn_id.in_([r.id for r in rows]))
        .order_by(TurnImage.id)
    ).all()
    first_kept = len(sizes) - newest_within([int(size or 0) for _, _, size in sizes], max_image_bytes)
    left_out: dict[int, int] = {}
    for _, turn_id, _ in sizes[:first_kept]:
        left_out[turn_id] = left_out.get(turn_id, 0) + 1
    images: dict[int, list[TurnImageRecord]] = {}
    wanted = [image_id for image_id, _, _ in sizes[first_kept:]]
    if wanted:
        for image in s.scalars(select(TurnImage).where(TurnImage.id.in_(wanted)).order_by(TurnImage.id)):
            images.setdefault(image.turn_id, []).append(
                TurnImageRecord(mime_type=image.mime_type, data=image.data, sha256=image.sha256)
            )
    return [
        TurnRecord(
            id=r.id,
            role=r.role,
            text=r.text,
            images=tuple(images.get(r.id, ())),
            created_at=r.created_at,
            images_left_out=left_out.get(r.id, 0),
        )
        for r in rows
    ]


def prune(s: Session, older_than: datetime) -> int:
    """Delete the turns created before `older_than`, and their images; returns how many turns went.

    The images are deleted first and explicitly: the foreign key cascades too, but SQLite honours
    that only on connections with `PRAGMA foreign_keys=ON`, and a turn's images are its bulk.
    """
    old = select(ConversationTurn.id).where(ConversationTurn.created_at < older_than)
    s.execute(
        delete(TurnImage).where(TurnImage.turn_id.in_(old)).execution_options(synchronize_session=False)
    )
    result = s.execute(
        delete(ConversationTurn)
        .where(ConversationTurn.created_at < older_than)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
