"""calls and recordings

Revision ID: voice_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "voice_0001"
down_revision = None
branch_labels = ("voice",)
depends_on = "crm_sync_0001"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=128), nullable=False),
        sa.Column("client_id", BigId, nullable=True),
        sa.Column("attempt_id", sa.BigInteger(), nullable=True),
        sa.Column("trunk", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("sip_reason", sa.String(length=255), nullable=True),
        sa.Column("hangup_by", sa.String(length=8), nullable=True),
        sa.Column("dtmf", sa.String(length=128), nullable=False),
        sa.Column("robot_text", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_calls_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("uuid", name=op.f("uq_calls_uuid")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_attempt_id", ["attempt_id"], unique=False)
        batch_op.create_index("ix_calls_client_id", ["client_id"], unique=False)
        batch_op.create_index("ix_calls_state_worker_id", ["state", "worker_id"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("call_id", BigId, nullable=False),
        sa.Column("uri", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage", sa.String(length=8), nullable=False),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("transcription_state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_recordings_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("sha256", name=op.f("uq_recordings_sha256")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index("ix_recordings_call_id", ["call_id"], unique=False)
        batch_op.create_index("ix_recordings_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_recordings_transcription_state", ["transcription_state"], unique=False
        )


def downgrade() -> None:
    op.drop_table("recordings")
    op.drop_table("calls")
