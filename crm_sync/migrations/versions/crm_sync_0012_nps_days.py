"""nps_days: scored NPS answers per day, group and reason, stored by the background refresh
after every planning pass; stored_figures: up to when they were counted; ix_tasks_client

Revision ID: crm_sync_0012
Revises: crm_sync_0011

The overview's NPS trend and the reasons page add up these days (a few hundred rows for a
year) and count on request only the answers after ``stored_figures.through``, instead of
counting every answer of the period per request (a year held ~400,000 answers at 1M clients).
``ix_tasks_client``: a client's tasks (the card, the answer page, the overview's detractors)
were a full read of ``tasks`` per request (250,000 rows at 1M clients in the benchmark).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import povtor.db

revision = "crm_sync_0012"
down_revision = "crm_sync_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nps_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grp", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "grp", "category", name=op.f("pk_nps_days")),
    )
    op.create_table(
        "stored_figures",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("through", povtor.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stored_figures")),
    )
    op.create_index("ix_tasks_client", "tasks", ["client_id", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_client", table_name="tasks")
    op.drop_table("stored_figures")
    op.drop_table("nps_days")
