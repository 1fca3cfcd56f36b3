"""An index on when conversation turns were written, for the hourly retention prune.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

`bot.background.Housekeeping` deletes the turns older than GEMBOT_CONVERSATION_RETENTION_DAYS every hour in
every serving process; without this index each of those deletes reads the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_conversation_turns_created_at"), "conversation_turns", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_turns_created_at"), table_name="conversation_turns")
