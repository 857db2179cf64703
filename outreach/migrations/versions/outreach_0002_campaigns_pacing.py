"""outreach: campaigns waiting for approval, paused purposes, an audit log, contact purposes

Revision ID: outreach_0002
Revises: outreach_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "outreach_0002"
down_revision = "outreach_0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CAMPAIGN = sa.text("campaign_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "outreach_campaigns",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_campaigns")),
    )
    op.create_index("ix_outreach_campaigns_state", "outreach_campaigns", ["state", "id"])
    op.create_table(
        "outreach_pauses",
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("paused_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_outreach_pauses")),
    )
    op.create_table(
        "outreach_actions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_actions")),
    )
    op.add_column("outreach_attempts", sa.Column("campaign_id", BigId, nullable=True))
    op.create_index(
        "ix_outreach_attempts_campaign",
        "outreach_attempts",
        ["campaign_id"],
        postgresql_where=CAMPAIGN,
        sqlite_where=CAMPAIGN,
    )
    op.add_column("outreach_contacts", sa.Column("purpose", sa.String(length=16), nullable=True))
    op.create_index("ix_outreach_contacts_at", "outreach_contacts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_outreach_contacts_at", table_name="outreach_contacts")
    with op.batch_alter_table("outreach_contacts") as batch:
        batch.drop_column("purpose")
    op.drop_index("ix_outreach_attempts_campaign", table_name="outreach_attempts")
    with op.batch_alter_table("outreach_attempts") as batch:
        batch.drop_column("campaign_id")
    op.drop_table("outreach_actions")
    op.drop_table("outreach_pauses")
    op.drop_index("ix_outreach_campaigns_state", table_name="outreach_campaigns")
    op.drop_table("outreach_campaigns")
