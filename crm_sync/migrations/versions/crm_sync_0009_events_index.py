"""events: drop ix_events_client_id_id, which no query reads

Revision ID: crm_sync_0009
Revises: crm_sync_0007

Every read of a client's events (the timeline, the NPS planner's surveyed clients, the cascade
of a deleted client) filters on client_id and orders by time: both databases pick
ix_events_client_at (client_id, at, id), which leads with the same column. The older
(client_id, id) index was only written, once per timeline row, on every import of orders.
"""

from __future__ import annotations

from alembic import op

revision = "crm_sync_0009"
down_revision = "crm_sync_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_client_id_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_client_id_id", "events", ["client_id", "id"])
