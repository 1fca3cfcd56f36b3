"""Fitted classifiers kept per set version, so a new process reads one instead of fitting it again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trained_models",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("set_name", sa.String(length=100), nullable=False),
        sa.Column("set_version", sa.Integer(), nullable=False),
        # sha256 of what else the fit depends on: method, embedding model, temperature, coverage.
        sa.Column("fit_key", sa.String(length=64), nullable=False),
        # sha256 of the examples fitted on.
        sa.Column("data_hash", sa.String(length=64), nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "team_id", "set_name", "set_version", "fit_key", name=op.f("pk_trained_models")
        ),
    )


def downgrade() -> None:
    op.drop_table("trained_models")
