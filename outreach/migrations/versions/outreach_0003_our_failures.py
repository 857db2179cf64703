"""outreach: count the executions that failed on our side, apart from the client's tries

Revision ID: outreach_0003
Revises: outreach_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outreach_0003"
down_revision = "outreach_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outreach_attempts",
        sa.Column("our_failures", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("outreach_attempts") as batch:
        batch.drop_column("our_failures")
