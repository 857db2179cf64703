"""transcripts

Revision ID: voice_asr_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "voice_asr_0001"
down_revision = None
branch_labels = ("voice_asr",)
depends_on = "crm_sync_0001"


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("call_id", sa.BigInteger(), nullable=True),
        sa.Column("recording_ref", sa.String(length=500), nullable=True),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcripts")),
        sa.UniqueConstraint("sha256", name=op.f("uq_transcripts_sha256")),
    )
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcripts_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcripts_call_id"))
    op.drop_table("transcripts")
