"""crm_push by state and time: the last push done, read by the dashboard's CRM page

Revision ID: crm_sync_0005
Revises: crm_sync_0004
"""

from __future__ import annotations

from alembic import op

revision = "crm_sync_0005"
down_revision = "crm_sync_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_crm_push_state_updated", "crm_push", ["connector", "state", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_crm_push_state_updated", table_name="crm_push")
