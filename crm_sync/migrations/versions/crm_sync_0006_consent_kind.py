"""consents per kind of contact (service, advertising); the timeline by time

Revision ID: crm_sync_0006
Revises: crm_sync_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0006"
down_revision = "crm_sync_0005"
branch_labels = None
depends_on = None

COLUMNS = "client_id, channel, granted, source, at"


def _table(name: str, with_kind: bool) -> None:
    kind = [sa.Column("kind", sa.String(length=16), nullable=False)] if with_kind else []
    key = ("client_id", "channel", "kind") if with_kind else ("client_id", "channel")
    op.create_table(
        name,
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        *kind,
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=f"fk_{name}_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"),
    )


def _swap(with_kind: bool) -> None:
    """A new table, the rows copied, the old one dropped, names and constraints as before."""
    _table("consents_new", with_kind)
    if with_kind:
        op.execute(
            "INSERT INTO consents_new (client_id, channel, kind, granted, source, at) "
            "SELECT client_id, channel, 'service', granted, source, at FROM consents"
        )
    else:
        op.execute(
            f"INSERT INTO consents_new ({COLUMNS}) SELECT {COLUMNS} FROM consents "
            "WHERE kind = 'service'"
        )
    op.drop_table("consents")
    op.rename_table("consents_new", "consents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE consents RENAME CONSTRAINT pk_consents_new TO pk_consents")
        op.execute(
            "ALTER TABLE consents RENAME CONSTRAINT fk_consents_new_client_id_clients "
            "TO fk_consents_client_id_clients"
        )


def upgrade() -> None:
    _swap(with_kind=True)
    op.create_index("ix_events_client_at", "events", ["client_id", "at", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_client_at", table_name="events")
    _swap(with_kind=False)
