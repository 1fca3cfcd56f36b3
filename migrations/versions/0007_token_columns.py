"""Slack tokens encrypted at rest: the OAuth tables' token columns become TEXT.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

`bot.token_crypto` stores each token as `gembot-enc1:` and a Fernet token, about 2.3 times the
token's length: a plain `xoxb-` token still fits slack_sdk's VARCHAR(200), but a rotating token
(`xoxe.xoxb-…`, some 170 characters) or a refresh token encrypted does not, and PostgreSQL refuses
it. The rows are not rewritten here (the key is a runtime setting, not the migration's): the
application encrypts plain-text rows when it starts. Downgrading narrows the columns again, which
PostgreSQL refuses while a longer value is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_COLUMNS = {
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def upgrade() -> None:
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.String(length=200), type_=sa.Text())


def downgrade() -> None:
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Text(), type_=sa.String(length=200))
