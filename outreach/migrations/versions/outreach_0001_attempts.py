"""outreach: attempts, outcomes, contacts, workers

Revision ID: outreach_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "outreach_0001"
down_revision = None
branch_labels = ("outreach",)
depends_on = "crm_sync_0001"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DUE = sa.text("state IN ('planned', 'retry_scheduled')")
LEASED = sa.text("state IN ('claimed', 'in_progress')")
PENDING = sa.text("followup_done_at IS NULL")
FALLBACK = sa.text("fallback_of IS NOT NULL")
NPS = sa.text("purpose = 'nps'")


def upgrade() -> None:
    op.create_table(
        "outreach_contacts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempt_id", BigId, nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_contacts")),
        sa.UniqueConstraint("attempt_id", "attempt_no", name="uq_outreach_contacts_execution"),
    )
    op.create_index(
        "ix_outreach_contacts_client", "outreach_contacts", ["client_id", "channel", "at"]
    )
    op.create_table(
        "outreach_workers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_workers")),
    )
    op.create_table(
        "outreach_attempts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("not_before", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("fallback_of", BigId, nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_expires_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_detail", sa.Text(), nullable=True),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_outreach_attempts_client", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outreach_attempts_idempotency_key")),
    )
    op.create_index(
        "ix_outreach_attempts_nps_client",
        "outreach_attempts",
        ["client_id", "created_at"],
        postgresql_where=NPS,
        sqlite_where=NPS,
    )
    op.create_index(
        "ix_outreach_attempts_due",
        "outreach_attempts",
        ["not_before"],
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    op.create_index(
        "ix_outreach_attempts_fallback_of",
        "outreach_attempts",
        ["fallback_of"],
        postgresql_where=FALLBACK,
        sqlite_where=FALLBACK,
    )
    op.create_index(
        "ix_outreach_attempts_lease",
        "outreach_attempts",
        ["lease_expires_at"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    op.create_index(
        "ix_outreach_attempts_worker",
        "outreach_attempts",
        ["worker_id"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    op.create_table(
        "outreach_outcomes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("attempt_id", BigId, nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("recorded_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("followup_done_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["outreach_attempts.id"],
            name=op.f("fk_outreach_outcomes_attempt_id_outreach_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_outcomes")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_outreach_outcomes_dedup_key")),
    )
    op.create_index("ix_outreach_outcomes_attempt", "outreach_outcomes", ["attempt_id"])
    op.create_index(
        "ix_outreach_outcomes_pending",
        "outreach_outcomes",
        ["id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_table("outreach_outcomes")
    op.drop_table("outreach_attempts")
    op.drop_table("outreach_workers")
    op.drop_table("outreach_contacts")
