"""outreach: no foreign key from the attempts to crm_sync's clients

Outreach keeps its own tables and reaches client data through ports; the key made every
planned attempt check and lock its client's row (about a tenth of the database's work in a
planning pass). An attempt whose client is gone is skipped by the dispatcher ("client no longer
exists"), and a client's attempts are removed through ``ClientErasure`` (the queue's
``erase_clients``).

SQLite rebuilds the table. Foreign keys are enforced on every connection, and enforcement cannot
be turned off inside the migration's transaction, so dropping the old table deletes the outcomes
that reference it (their cascade): they are kept aside in a temporary table and put back.

Revision ID: outreach_0005
Revises: outreach_0004
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "outreach_0005"
down_revision = "outreach_0004"
branch_labels = None
depends_on = None

KEY = "fk_outreach_attempts_client"


@contextmanager
def _outcomes_kept() -> Iterator[None]:
    """SQLite: the outcomes survive the rebuild of the attempts (see above)."""
    op.execute("CREATE TEMPORARY TABLE kept_outcomes AS SELECT * FROM outreach_outcomes")
    yield
    op.execute("INSERT INTO outreach_outcomes SELECT * FROM kept_outcomes")
    op.execute("DROP TABLE kept_outcomes")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(KEY, "outreach_attempts", type_="foreignkey")
        return
    with _outcomes_kept(), op.batch_alter_table("outreach_attempts", recreate="always") as batch:
        batch.drop_constraint(KEY, type_="foreignkey")


def downgrade() -> None:
    # Attempts of clients deleted meanwhile would break the key: they go first.
    op.execute(
        "DELETE FROM outreach_attempts"
        " WHERE NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = outreach_attempts.client_id)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            KEY, "outreach_attempts", "clients", ["client_id"], ["id"], ondelete="CASCADE"
        )
        return
    with _outcomes_kept(), op.batch_alter_table("outreach_attempts", recreate="always") as batch:
        batch.create_foreign_key(KEY, "clients", ["client_id"], ["id"], ondelete="CASCADE")
