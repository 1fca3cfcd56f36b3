"""Who added each example, and whether its author is Slack's word or a file's claim.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

`examples.added_by` is the Slack user who added the example (`/label add`, the message shortcut,
a feedback button, a CSV sent by DM); `examples.author_from_file` is true when `author` came from
an imported file, so that `handlers.rights` does not let whoever a file names remove the row.
Rows from before this revision keep `added_by` NULL (the change log still says who added them,
when it does) and `author_from_file` false: their authors are trusted as they were.

Written out in full rather than importing `core.store.models`, like the earlier migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.add_column(sa.Column("added_by", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("author_from_file", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("author_from_file")
        batch.drop_column("added_by")
