"""bot: the polling lease (one worker calls getUpdates) and keys shared by every worker

Revision ID: bot_0003
Revises: bot_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "bot_0003"
down_revision = "bot_0002"
branch_labels = None
depends_on = None

Utc = povtor.db.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "bot_leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", Utc(timezone=True), nullable=True),
        sa.Column("updated_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_bot_leases")),
    )
    op.create_table(
        "bot_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_bot_keys")),
    )


def downgrade() -> None:
    op.drop_table("bot_keys")
    op.drop_table("bot_leases")
