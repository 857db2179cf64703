"""erasure_requests, erasure_suppressions, erasure_keys: erasing a client on request

Revision ID: crm_sync_0013
Revises: crm_sync_0012

A data subject's request to erase their personal data (152-FZ) is a row that stays pending until
every part confirmed (a failure part-way is finished by a rerun) and then is the record of the
erasure, without personal data. The suppression list holds keyed digests of the erased clients'
phones and codes, so the next import does not re-create them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0013"
down_revision = "crm_sync_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", povtor.db.BigId, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=160), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", povtor.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
    )
    op.create_index("ix_erasure_requests_state", "erasure_requests", ["state", "id"])
    op.create_table(
        "erasure_suppressions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_erasure_suppressions")),
    )
    op.create_table(
        "erasure_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_erasure_keys")),
    )


def downgrade() -> None:
    op.drop_table("erasure_keys")
    op.drop_table("erasure_suppressions")
    op.drop_index("ix_erasure_requests_state", table_name="erasure_requests")
    op.drop_table("erasure_requests")
