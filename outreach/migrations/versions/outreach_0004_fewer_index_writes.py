"""outreach: fewer index entries written per contact started

The lease and the worker of a leased attempt in one partial index (two entries per start were
one each); a contact's own key, the execution (attempt, execution number), is its primary key
(the serial id, read by nothing, was one more index and a sequence call per contact).

Revision ID: outreach_0004
Revises: outreach_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outreach_0004"
down_revision = "outreach_0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LEASED = sa.text("state IN ('claimed', 'in_progress')")


def upgrade() -> None:
    op.drop_index("ix_outreach_attempts_worker", table_name="outreach_attempts")
    op.drop_index("ix_outreach_attempts_lease", table_name="outreach_attempts")
    op.create_index(
        "ix_outreach_attempts_lease",
        "outreach_attempts",
        ["lease_expires_at", "worker_id"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    with op.batch_alter_table("outreach_contacts", recreate="auto") as batch:
        batch.drop_constraint("uq_outreach_contacts_execution", type_="unique")
        batch.drop_constraint("pk_outreach_contacts", type_="primary")
        batch.drop_column("id")
        batch.create_primary_key("pk_outreach_contacts", ["attempt_id", "attempt_no"])


def downgrade() -> None:
    with op.batch_alter_table("outreach_contacts", recreate="auto") as batch:
        batch.drop_constraint("pk_outreach_contacts", type_="primary")
        batch.create_unique_constraint(
            "uq_outreach_contacts_execution", ["attempt_id", "attempt_no"]
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outreach_contacts ADD COLUMN id BIGSERIAL")
        op.create_primary_key("pk_outreach_contacts", "outreach_contacts", ["id"])
    else:
        with op.batch_alter_table("outreach_contacts", recreate="always") as batch:
            batch.add_column(sa.Column("id", BigId, autoincrement=True, nullable=True))
            batch.create_primary_key("pk_outreach_contacts", ["id"])
    op.drop_index("ix_outreach_attempts_lease", table_name="outreach_attempts")
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
