"""Gemini's answers in Slack (which model, where) and the feedback people gave each.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
The answer's text is not kept: the feedback buttons carry the answer's id, and App Home counts
verdicts per model.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        # None when the answer went out through a response_url, which returns no ts.
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    # App Home reads one workspace's recent answers; the retention prune, the oldest of all.
    op.create_index(op.f("ix_answers_team_id_created_at"), "answers", ["team_id", "created_at"], unique=False)
    op.create_index(op.f("ix_answers_created_at"), "answers", ["created_at"], unique=False)
    op.create_table(
        "answer_feedback",
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["answers.id"],
            name=op.f("fk_answer_feedback_answer_id_answers"),
            ondelete="CASCADE",
        ),
        # One verdict per person and answer: a later press replaces it.
        sa.PrimaryKeyConstraint("answer_id", "user_id", name=op.f("pk_answer_feedback")),
    )


def downgrade() -> None:
    op.drop_table("answer_feedback")
    op.drop_index(op.f("ix_answers_created_at"), table_name="answers")
    op.drop_index(op.f("ix_answers_team_id_created_at"), table_name="answers")
    op.drop_table("answers")
