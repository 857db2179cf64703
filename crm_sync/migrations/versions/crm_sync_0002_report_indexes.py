"""indexes for reports: orders by time, events by kind and time

Revision ID: crm_sync_0002
Revises: crm_sync_0001
"""

from __future__ import annotations

from alembic import op

revision = "crm_sync_0002"
down_revision = "crm_sync_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The period scan of the ABC/XYZ query reads only these columns: an index-only scan on
    # PostgreSQL (INCLUDE), a covering index on SQLite.
    with op.batch_alter_table("orders") as batch:
        batch.create_index(
            "ix_orders_placed_at",
            ["placed_at", "client_id", "amount"],
        )
    # NPS surveys and answers of a period.
    with op.batch_alter_table("events") as batch:
        batch.create_index("ix_events_kind_at", ["kind", "at"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_kind_at")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_placed_at")
