"""failed sign-ins and the worker's health shared by every serving process

Revision ID: dashboard_0002
Revises: dashboard_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "dashboard_0002"
down_revision = "dashboard_0001"
branch_labels = None
depends_on = None

Utc = povtor.db.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "dashboard_login_failures",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", Utc(timezone=True), nullable=False),
        sa.Column("locked_until", Utc(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dashboard_login_failures")),
    )
    with op.batch_alter_table("dashboard_login_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dashboard_login_failures_last_failure", ["last_failure"], unique=False
        )
    op.create_table(
        "dashboard_health",
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", Utc(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "name", name=op.f("pk_dashboard_health")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_health")
    op.drop_table("dashboard_login_failures")
