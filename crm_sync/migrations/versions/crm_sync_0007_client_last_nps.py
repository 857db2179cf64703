"""client_stats: the last scored NPS answer of each client (the client list's NPS filter)

Revision ID: crm_sync_0007
Revises: crm_sync_0006

Clients with answers and no orders get a row too (0 orders, no order dates), so the order
dates become nullable. Existing answers are backfilled in set-based statements.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0007"
down_revision = "crm_sync_0006"
branch_labels = None
depends_on = None

GROUPS = {"detractor": (0, 6), "passive": (7, 8), "promoter": (9, 10)}  # povtor.domain
LAST_ID = (
    "(SELECT n.id FROM nps_responses n WHERE n.client_id = client_stats.client_id "
    "AND n.score IS NOT NULL ORDER BY n.answered_at DESC, n.id DESC LIMIT 1)"
)


def upgrade() -> None:
    with op.batch_alter_table("client_stats") as batch:
        batch.alter_column(
            "first_order_at", existing_type=povtor.db.UtcDateTime(timezone=True), nullable=True
        )
        batch.alter_column(
            "last_order_at", existing_type=povtor.db.UtcDateTime(timezone=True), nullable=True
        )
        batch.add_column(sa.Column("last_nps_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_nps_score", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("last_nps_at", povtor.db.UtcDateTime(timezone=True), nullable=True)
        )
    for group, (low, high) in GROUPS.items():  # the clients of one group in id order
        where = sa.text(f"last_nps_score BETWEEN {low} AND {high}")
        op.create_index(
            f"ix_client_stats_{group}",
            "client_stats",
            ["client_id"],
            postgresql_where=where,
            sqlite_where=where,
        )
    op.execute(
        "INSERT INTO client_stats (client_id, orders_count, revenue) "
        "SELECT DISTINCT n.client_id, 0, 0 FROM nps_responses n WHERE n.score IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM client_stats s WHERE s.client_id = n.client_id)"
    )
    op.execute(
        f"UPDATE client_stats SET last_nps_id = {LAST_ID} WHERE client_id IN "
        "(SELECT client_id FROM nps_responses WHERE score IS NOT NULL)"
    )
    # answered_at is copied as stored (SQLite keeps its text format)
    op.execute(
        "UPDATE client_stats SET "
        "last_nps_score = (SELECT n.score FROM nps_responses n WHERE n.id = last_nps_id), "
        "last_nps_at = (SELECT n.answered_at FROM nps_responses n WHERE n.id = last_nps_id) "
        "WHERE last_nps_id IS NOT NULL"
    )


def downgrade() -> None:
    for group in GROUPS:
        op.drop_index(f"ix_client_stats_{group}", table_name="client_stats")
    op.execute("DELETE FROM client_stats WHERE last_order_at IS NULL")
    with op.batch_alter_table("client_stats") as batch:
        batch.drop_column("last_nps_at")
        batch.drop_column("last_nps_score")
        batch.drop_column("last_nps_id")
        batch.alter_column(
            "last_order_at", existing_type=povtor.db.UtcDateTime(timezone=True), nullable=False
        )
        batch.alter_column(
            "first_order_at", existing_type=povtor.db.UtcDateTime(timezone=True), nullable=False
        )
