"""client_stats: per-client order summary kept at write time, for reports

Revision ID: crm_sync_0003
Revises: crm_sync_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0003"
down_revision = "crm_sync_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_stats",
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("first_order_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_order_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_stats_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_client_stats")),
    )
    op.create_index(
        "ix_client_stats_first_last",
        "client_stats",
        ["first_order_at", "last_order_at", "orders_count"],
    )
    # Existing orders: one pass (min/max on SQLite keep the stored text format).
    op.execute(
        "INSERT INTO client_stats (client_id, first_order_at, last_order_at, orders_count, "
        "revenue) SELECT client_id, min(placed_at), max(placed_at), count(*), sum(amount) "
        "FROM orders GROUP BY client_id"
    )


def downgrade() -> None:
    op.drop_index("ix_client_stats_first_last", table_name="client_stats")
    op.drop_table("client_stats")
