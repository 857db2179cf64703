"""bot: index presses by callback query id (batch lookups of the presses that count)

Revision ID: bot_0002
Revises: bot_0001
"""

from __future__ import annotations

from alembic import op

revision = "bot_0002"
down_revision = "bot_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bot_presses_callback_query_id", "bot_presses", ["callback_query_id"])


def downgrade() -> None:
    op.drop_index("ix_bot_presses_callback_query_id", table_name="bot_presses")
