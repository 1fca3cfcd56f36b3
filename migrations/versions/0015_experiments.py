"""Prompt experiments: experiments, their results, Gemini batch jobs, and the response cache.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tokens(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("cases", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("rerun_of", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _stamp("created_at"),
        _stamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_experiments_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    # `experiment list` reads one workspace's newest.
    op.create_index(
        op.f("ix_experiments_team_id_created_at"), "experiments", ["team_id", "created_at"], unique=False
    )
    op.create_table(
        "experiment_results",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("judge_reason", sa.Text(), nullable=True),
        *_tokens(
            "input_tokens", "output_tokens", "thinking_tokens", "judge_input_tokens", "judge_output_tokens"
        ),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("batch", sa.Boolean(), nullable=False),
        _stamp("created_at"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_results_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "model", "row_index", name=op.f("pk_experiment_results")),
    )
    op.create_table(
        "generation_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        *_tokens("input_tokens", "output_tokens", "thinking_tokens"),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        _stamp("created_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_generation_cache")),
    )
    # The retention prune drops the oldest entries.
    op.create_index(op.f("ix_generation_cache_created_at"), "generation_cache", ["created_at"], unique=False)
    op.create_table(
        "experiment_batches",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _stamp("submitted_at"),
        _stamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_batches_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "model", name=op.f("pk_experiment_batches")),
    )


def downgrade() -> None:
    op.drop_table("experiment_batches")
    op.drop_index(op.f("ix_generation_cache_created_at"), table_name="generation_cache")
    op.drop_table("generation_cache")
    op.drop_table("experiment_results")
    op.drop_index(op.f("ix_experiments_team_id_created_at"), table_name="experiments")
    op.drop_table("experiments")
