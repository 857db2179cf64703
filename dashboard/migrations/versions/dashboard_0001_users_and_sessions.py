"""dashboard users and sessions

Revision ID: dashboard_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "dashboard_0001"
down_revision = None
branch_labels = ("dashboard",)
depends_on = "crm_sync_0001"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = povtor.db.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled_at", Utc(timezone=True), nullable=True),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.Column("updated_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_users")),
        sa.UniqueConstraint("login", name=op.f("uq_dashboard_users_login")),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.Column("expires_at", Utc(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["dashboard_users.id"],
            name=op.f("fk_dashboard_sessions_user_id_dashboard_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_sessions")),
    )
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_sessions_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(op.f("ix_dashboard_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_users")
