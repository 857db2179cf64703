"""bot tables: updates, link tokens, managers, invites, chat state, outbox, presses, alerts

Revision ID: bot_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "bot_0001"
down_revision = None
branch_labels = ("bot",)
depends_on = "crm_sync_0001"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = povtor.db.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "bot_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("received_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_bot_updates")),
    )
    op.create_table(
        "bot_link_tokens",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("used_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_bot_link_tokens")),
    )
    op.create_table(
        "bot_managers",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_managers")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_bot_managers_chat_id")),
    )
    op.create_table(
        "bot_invites",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.Column("expires_at", Utc(timezone=True), nullable=False),
        sa.Column("used_at", Utc(timezone=True), nullable=True),
        sa.Column("used_by_chat", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_bot_invites")),
    )
    op.create_table(
        "bot_chat_state",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("attempt_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("updated_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_bot_chat_state")),
    )
    op.create_table(
        "bot_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("attempt_id", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.Column("sent_at", Utc(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_bot_outbox_dedup_key")),
    )
    op.create_index("ix_bot_outbox_attempt_id", "bot_outbox", ["attempt_id"])
    op.create_table(
        "bot_presses",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("callback_query_id", sa.String(length=64), nullable=False),
        sa.Column("pressed_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_presses")),
        sa.UniqueConstraint("outbox_id", "slot", name="uq_bot_presses_outbox_slot"),
    )
    op.create_table(
        "bot_alerts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("taken_by", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", Utc(timezone=True), nullable=False),
        sa.Column("updated_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_alerts")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_bot_alerts_dedup_key")),
    )


def downgrade() -> None:
    op.drop_table("bot_alerts")
    op.drop_table("bot_presses")
    op.drop_index("ix_bot_outbox_attempt_id", table_name="bot_outbox")
    op.drop_table("bot_outbox")
    op.drop_table("bot_chat_state")
    op.drop_table("bot_invites")
    op.drop_table("bot_managers")
    op.drop_table("bot_link_tokens")
    op.drop_table("bot_updates")
