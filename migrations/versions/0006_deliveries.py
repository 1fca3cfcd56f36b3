"""Requests in flight: a lease, a finish time, attempts and the request itself on `slack_events`,
so that work a dead process held is run again by another.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_events") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.create_index(
            batch.f("ix_slack_events_finished_at_lease_until"), ["finished_at", "lease_until"], unique=False
        )
    # Events taken on before this revision were processed (or lost) long ago: they only drop
    # redeliveries now.
    op.execute("UPDATE slack_events SET finished_at = received_at")
    with op.batch_alter_table("slack_events") as batch:
        batch.alter_column("attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("slack_events") as batch:
        batch.drop_index(batch.f("ix_slack_events_finished_at_lease_until"))
        batch.drop_column("payload")
        batch.drop_column("attempts")
        batch.drop_column("finished_at")
        batch.drop_column("lease_until")
