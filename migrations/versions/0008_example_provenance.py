"""Who added each example, and whether its author is Slack's word or a file's claim.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

`examples.added_by` is the Slack user who added the example (`/label add`, the message shortcut,
a feedback button, a CSV sent by DM); `examples.author_from_file` is true when `author` came from
an imported file, so that `handlers.rights` does not let whoever a file names remove the row.
Rows from before this revision get `added_by` from the change log's latest `add` entry for them
(an import, which names no single example, leaves it NULL) and `author_from_file` false: their
authors are trusted as they were. From then on the example itself is the one record of who added
it, so a later example that reuses a deleted one's id (SQLite reuses the highest) can never
inherit that one's log entry.

Written out in full rather than importing `core.store.schema`, like the earlier migrations.
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
    op.execute(
        "UPDATE examples SET added_by = ("
        " SELECT c.actor FROM label_changes c, labels l, label_sets s"
        " WHERE l.id = examples.label_id AND s.id = l.set_id AND c.team_id = s.team_id"
        " AND c.example_id = examples.id AND c.action = 'add'"
        " ORDER BY c.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("author_from_file")
        batch.drop_column("added_by")
