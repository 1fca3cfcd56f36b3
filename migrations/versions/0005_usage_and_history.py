"""Usage limits and the label-set change log: daily Gemini call counters, and who changed what, when.

Revision ID: 0005
Revises: 0004
Create Date: 2025-11-30

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_counters",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        # "" for the row that counts the whole workspace.
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", "day", name=op.f("pk_usage_counters")),
    )
    op.create_table(
        "label_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("set_name", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("example_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_changes")),
    )
    op.create_index(
        op.f("ix_label_changes_team_id_set_name_id"), "label_changes", ["team_id", "set_name", "id"]
    )
    op.create_index(op.f("ix_label_changes_team_id_id"), "label_changes", ["team_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_label_changes_team_id_id"), table_name="label_changes")
    op.drop_index(op.f("ix_label_changes_team_id_set_name_id"), table_name="label_changes")
    op.drop_table("label_changes")
    op.drop_table("usage_counters")
