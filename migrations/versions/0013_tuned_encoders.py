"""Tuned encoders (a set's fine-tuned embedding model, as bytes) and the requests to tune a set again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
Neither table has a foreign key to `label_sets`: like the other per-set tables they are keyed by
the set's name, and `Store.remove_set` deletes their rows in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tuned_encoders",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("set_name", sa.String(length=100), nullable=False),
        # The set's version the tune saw; one row per set, the newest tune replaces the last.
        sa.Column("set_version", sa.Integer(), nullable=False),
        # The embedder it was tuned from, e.g. local/all-MiniLM-L6-v2/384.
        sa.Column("base", sa.String(length=200), nullable=False),
        # encoder (a whole fine-tuned model) or adapter (a small layer over the base's vectors).
        sa.Column("kind", sa.String(length=32), nullable=False),
        # sha256 of `blob`, so a reader can ask for exactly the bytes it was told about.
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        # Tens of megabytes at most: SQLite's BLOB and PostgreSQL's bytea hold that.
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "set_name", name=op.f("pk_tuned_encoders")),
    )
    op.create_table(
        "tune_jobs",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("set_name", sa.String(length=100), nullable=False),
        # The last time a tune was asked for: every edit of a tuned set moves it.
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        # After a failure: not tried again before this moment.
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "set_name", name=op.f("pk_tune_jobs")),
    )


def downgrade() -> None:
    op.drop_table("tune_jobs")
    op.drop_table("tuned_encoders")
