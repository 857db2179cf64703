"""report_snapshots: the repeat-sales report of each period the dashboard offers, stored by
the worker's background refresh

Revision ID: crm_sync_0008
Revises: crm_sync_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0008"
down_revision = "crm_sync_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("computed_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_report_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("report_snapshots")
