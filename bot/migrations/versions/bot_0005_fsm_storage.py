"""bot: chat state moves into aiogram's FSM storage table (bot_fsm), kept rows carried over

Revision ID: bot_0005
Revises: bot_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "bot_0005"
down_revision = "bot_0003"
branch_labels = None
depends_on = None

Utc = povtor.db.UtcDateTime
_FIELDS = ("client_id", "attempt_id", "message_id", "score")

old = sa.table(
    "bot_chat_state",
    sa.column("chat_id", sa.BigInteger()),
    sa.column("state", sa.String()),
    sa.column("client_id", sa.BigInteger()),
    sa.column("attempt_id", sa.BigInteger()),
    sa.column("message_id", sa.BigInteger()),
    sa.column("score", sa.Integer()),
    sa.column("data", sa.JSON()),
    sa.column("updated_at", Utc(timezone=True)),
)
new = sa.table(
    "bot_fsm",
    sa.column("key", sa.String()),
    sa.column("chat_id", sa.BigInteger()),
    sa.column("state", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("updated_at", Utc(timezone=True)),
)


def _key(chat_id: int) -> str:
    return f"fsm:{chat_id}:{chat_id}"  # aiogram's DefaultKeyBuilder for a private chat


def upgrade() -> None:
    op.create_table(
        "bot_fsm",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("updated_at", Utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_bot_fsm")),
    )
    op.create_index("ix_bot_fsm_state_updated_at", "bot_fsm", ["state", "updated_at"])
    bind = op.get_bind()
    rows = []
    for row in bind.execute(sa.select(old)).mappings():
        data = {name: row[name] for name in _FIELDS}
        if row["data"]:
            data["data"] = row["data"]
        rows.append(
            {
                "key": _key(row["chat_id"]),
                "chat_id": row["chat_id"],
                "state": row["state"],
                "data": data,
                "updated_at": row["updated_at"],
            }
        )
    if rows:
        bind.execute(sa.insert(new), rows)
    op.drop_table("bot_chat_state")


def downgrade() -> None:
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
    bind = op.get_bind()
    rows = []
    for row in bind.execute(sa.select(new).where(new.c.state.is_not(None))).mappings():
        data = dict(row["data"] or {})
        rows.append(
            {
                "chat_id": row["chat_id"],
                **{name: data.get(name) for name in _FIELDS},
                "state": row["state"],
                "data": data.get("data"),
                "updated_at": row["updated_at"],
            }
        )
    if rows:
        bind.execute(sa.insert(old), rows)
    op.drop_index("ix_bot_fsm_state_updated_at", table_name="bot_fsm")
    op.drop_table("bot_fsm")
