"""events: the timeline reads orders from orders; their event rows are removed

Revision ID: crm_sync_0011
Revises: crm_sync_0010

Every order had a copy in ``events`` (kind "order", dedup key "order:<external id>"), written
with it by the store, the imports and the demo data, and read only as part of a client's
timeline. It was the costliest write of an import of orders. The timeline now merges a client's
events with its orders (``crm_sync.history.order_events``), so those copies are removed here.
Events of kind "order" that no stored order wrote stay. The downgrade writes them back from
``orders`` in the shape the store gave them.
"""

from __future__ import annotations

from alembic import op

revision = "crm_sync_0011"
down_revision = "crm_sync_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM events WHERE kind = 'order' "
        "AND dedup_key IN (SELECT 'order:' || external_id FROM orders)"
    )


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    amount = "o.amount::text" if pg else "printf('%.2f', o.amount)"
    data = (
        f"json_build_object('external_id', o.external_id, 'amount', {amount})"
        if pg
        else f"json_object('external_id', o.external_id, 'amount', {amount})"
    )
    op.execute(
        "INSERT INTO events (client_id, kind, at, summary, ref, data, dedup_key) "
        f"SELECT o.client_id, 'order', o.placed_at, "
        f"'Заказ ' || o.external_id || ' на ' || {amount} || ' ' || o.currency, "
        f"'order:' || o.id, {data}, 'order:' || o.external_id "
        "FROM orders o WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.dedup_key = 'order:' || o.external_id) "
        "ORDER BY o.id"
    )
