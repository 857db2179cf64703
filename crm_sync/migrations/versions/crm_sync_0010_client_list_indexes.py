"""The client list: indexes for its filters and search; report_cells, the ABC/XYZ class of
each buyer of a stored repeat-sales period (a cell of the matrix lists its clients from there)

Revision ID: crm_sync_0010
Revises: crm_sync_0009

- ``ix_clients_opted_out``: the opted-out clients in id order (a few among many: without it the
  "opted out" filter read every client, 75 ms at 100k clients).
- PostgreSQL with ``pg_trgm`` available: trigram indexes on ``clients.name`` and
  ``client_phones.phone``, so a substring search (``ILIKE '%...%'``, phone digits) that finds
  few clients reads those few instead of every client (220 ms at 100k clients). Without the
  extension the search works as before, by a full read.
- ``report_cells``: written by the background refresh with each stored report. The stored
  reports are removed here: a report without its classes would list no client in its cells;
  the worker's next refresh stores both.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "crm_sync_0010"
down_revision = "crm_sync_0009"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)
OPTED_OUT = sa.text("opted_out_at IS NOT NULL")
TRIGRAMS = {"ix_clients_name_trgm": ("clients", "name"),
            "ix_client_phones_phone_trgm": ("client_phones", "phone")}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "report_cells",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("abc", sa.String(length=1), nullable=False),
        sa.Column("xyz", sa.String(length=1), nullable=True),
        sa.PrimaryKeyConstraint("period", "client_id", name=op.f("pk_report_cells")),
    )
    op.create_index("ix_report_cells_cell", "report_cells", ["period", "abc", "xyz", "client_id"])
    op.execute("DELETE FROM report_snapshots")
    op.create_index(
        "ix_clients_opted_out",
        "clients",
        ["id"],
        postgresql_where=OPTED_OUT,
        sqlite_where=OPTED_OUT,
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.scalar(
        sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")
    )
    if not available:
        log.warning("pg_trgm is not installed: client search reads every client (slower)")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in TRIGRAMS.items():
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAMS:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_clients_opted_out", table_name="clients")
    op.drop_index("ix_report_cells_cell", table_name="report_cells")
    op.drop_table("report_cells")
