"""bot: an update's claim names its worker run and says when its handler finished

Revision ID: bot_0006
Revises: bot_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "bot_0006"
down_revision = "bot_0005"
branch_labels = None
depends_on = None

Utc = povtor.db.UtcDateTime


def upgrade() -> None:
    op.add_column("bot_updates", sa.Column("claimed_by", sa.String(length=100), nullable=True))
    op.add_column("bot_updates", sa.Column("handled_at", Utc(timezone=True), nullable=True))
    # the updates claimed before had their handlers run (or failed and were released)
    op.execute("UPDATE bot_updates SET handled_at = received_at")


def downgrade() -> None:
    with op.batch_alter_table("bot_updates") as batch:
        batch.drop_column("handled_at")
        batch.drop_column("claimed_by")
