"""outcome sync to external CRMs: per-event push state, cursors, contacts, OAuth tokens

Revision ID: crm_sync_0004
Revises: crm_sync_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0004"
down_revision = "crm_sync_0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "crm_push",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("in_doubt", sa.Boolean(), nullable=False),
        sa.Column("next_try_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_crm_push_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_crm_push_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_push")),
        sa.UniqueConstraint("connector", "event_id", name="uq_crm_push_connector_event"),
    )
    op.create_index("ix_crm_push_due", "crm_push", ["connector", "state", "next_try_at"])
    op.create_table(
        "crm_cursors",
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", name=op.f("pk_crm_cursors")),
    )
    op.create_table(
        "crm_contacts",
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_crm_contacts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector", "client_id", name=op.f("pk_crm_contacts")),
    )
    op.create_table(
        "crm_tokens",
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", name=op.f("pk_crm_tokens")),
    )


def downgrade() -> None:
    op.drop_table("crm_tokens")
    op.drop_table("crm_contacts")
    op.drop_table("crm_cursors")
    op.drop_index("ix_crm_push_due", table_name="crm_push")
    op.drop_table("crm_push")
