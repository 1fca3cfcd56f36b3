"""Conversations held in Slack threads: their turns in order, each with the images it brought.

The turns are kept here rather than re-read from Slack, so a later question in a thread sees the
images of the first one without downloading them again, and without `files:read` on old files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.store import validation
from core.store.models import CHANNEL_ID_LENGTH, TS_LENGTH, ConversationTurn, TurnImage
from core.store.records import TurnImageRecord, TurnRecord

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


def turns(s: Session, key: tuple[str, str, str]) -> list[TurnRecord]:
    rows = s.scalars(
        select(ConversationTurn)
        .where(
            ConversationTurn.team_id == key[0],
            ConversationTurn.channel_id == key[1],
            ConversationTurn.thread_ts == key[2],
        )
        .order_by(ConversationTurn.id)
    ).all()
    if not rows:
        return []
    images: dict[int, list[TurnImageRecord]] = {}
    for image in s.scalars(
        select(TurnImage).where(TurnImage.turn_id.in_([r.id for r in rows])).order_by(TurnImage.id)
    ):
        images.setdefault(image.turn_id, []).append(
            TurnImageRecord(mime_type=image.mime_type, data=image.data, sha256=image.sha256)
        )
    return [
        TurnRecord(
            id=r.id, role=r.role, text=r.text, images=tuple(images.get(r.id, ())), created_at=r.created_at
        )
        for r in rows
    ]


def exists_for(s: Session, key: tuple[str, str, str]) -> bool:
    return bool(
        s.scalar(
            select(
                exists().where(
                    ConversationTurn.team_id == key[0],
                    ConversationTurn.channel_id == key[1],
                    ConversationTurn.thread_ts == key[2],
                )
            )
        )
    )
