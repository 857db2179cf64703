"""The per-client order summary (``client_stats``): one function keeps it, every writer calls it.

Imports, ``SqlHistoryStore.add_order`` and the demo loader call ``refresh_client_stats`` in the
same transaction as their order writes, with the clients whose orders they touched (for an order
moved to another client: both). The summary is recomputed from ``orders`` through the
``(client_id, placed_at)`` index, so it is exact whatever the change (new order, new amount or
date, an order moved between clients), and a client left without orders loses its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.tables import ClientStatsRow, OrderRow
from povtor.db import table_of

stats = table_of(ClientStatsRow)
orders = table_of(OrderRow)


async def refresh_client_stats(conn: AsyncConnection, client_ids: Sequence[int] | Any) -> None:
    """Recompute the summary of these clients: a list of ids or a SELECT of one id column."""
    if isinstance(client_ids, Sequence) and not client_ids:
        return
    ids = list(client_ids) if isinstance(client_ids, Sequence) else client_ids
    o = orders.c
    await conn.execute(delete(stats).where(stats.c.client_id.in_(ids)))
    summary = (
        select(
            o.client_id,
            func.min(o.placed_at),
            func.max(o.placed_at),
            func.count(),
            func.sum(o.amount),
        )
        .where(o.client_id.in_(ids))
        .group_by(o.client_id)
    )
    columns = ["client_id", "first_order_at", "last_order_at", "orders_count", "revenue"]
    await conn.execute(insert(stats).from_select(columns, summary))
