"""The per-client summary (``client_stats``): a few functions keep it, every writer calls them.

Orders: imports, ``SqlHistoryStore.add_order`` and the demo loader call ``refresh_client_stats``
in the same transaction as their order writes, with the clients whose orders they touched (for
an order moved to another client: both). The summary is recomputed from ``orders`` through the
``(client_id, placed_at)`` index, so it is exact whatever the change (new order, new amount or
date, an order moved between clients).

NPS (crm_sync_0007): ``SqlHistoryStore.record_nps`` and the demo loader call
``refresh_last_nps`` in the same transaction as their answer writes: the client's last scored
answer (by answer time, then id) found through the ``(client_id, answered_at)`` index, so the
client list filters by the NPS group of the last answer without a subquery per client.

Each function writes only its own columns (an upsert on the client's key), so an order and an
answer of one client written at the same time do not overwrite each other's part. A client
with neither orders nor a scored answer has no row; one with answers and no orders has a row
with 0 orders, no order dates and revenue 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.tables import ClientRow, ClientStatsRow, NpsResponseRow, OrderRow
from povtor.db import dialect_insert, table_of

stats = table_of(ClientStatsRow)
orders = table_of(OrderRow)
answers = table_of(NpsResponseRow)
clients = table_of(ClientRow)

ORDER_COLUMNS = ("first_order_at", "last_order_at", "orders_count", "revenue")
NPS_COLUMNS = ("last_nps_id", "last_nps_score", "last_nps_at")
NO_ORDERS: Mapping[str, Any] = {
    "first_order_at": None,
    "last_order_at": None,
    "orders_count": 0,
    "revenue": 0,
}
NO_NPS: Mapping[str, Any] = dict.fromkeys(NPS_COLUMNS)


async def refresh_client_stats(
    conn: AsyncConnection, client_ids: Sequence[int] | Any, *, emptied: bool = True
) -> None:
    """Recompute the order part of these clients: a list of ids or a SELECT of one id column.

    ``emptied=False``: the caller knows each of them has an order (it only added or changed
    orders of theirs), so no part is cleared and no row removed: two statements fewer."""
    ids = _ids(client_ids)
    if ids is None:
        return
    o = orders.c
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
    has_orders = exists().where(o.client_id == stats.c.client_id)
    await _merge(conn, ids, summary, ORDER_COLUMNS, has_orders if emptied else None, NO_ORDERS)


async def refresh_last_nps(conn: AsyncConnection, client_ids: Sequence[int] | Any) -> None:
    """Recompute the last scored NPS answer of these clients (ids or a SELECT of ids)."""
    ids = _ids(client_ids)
    if ids is None:
        return
    n, c = answers.c, clients.c
    last_id = (
        select(n.id)
        .where(n.client_id == c.id, n.score.is_not(None))
        .order_by(n.answered_at.desc(), n.id.desc())
        .limit(1)
        .correlate(clients)
        .scalar_subquery()
    )
    last = select(c.id.label("client_id"), last_id.label("answer_id")).where(c.id.in_(ids))
    found = last.subquery()
    latest = (
        select(found.c.client_id, n.id, n.score, n.answered_at, literal(0), literal(0))
        .select_from(found.join(answers, n.id == found.c.answer_id))
        .where(found.c.answer_id.is_not(None))
    )
    scored = exists().where(n.client_id == stats.c.client_id, n.score.is_not(None))
    # orders_count and revenue: 0 for a client first seen here (its order part keeps its own)
    await _merge(conn, ids, latest, (*NPS_COLUMNS, "orders_count", "revenue"), scored, NO_NPS)


def _ids(client_ids: Sequence[int] | Any) -> Any:
    if isinstance(client_ids, Sequence):
        return list(client_ids) or None
    return client_ids


async def _merge(
    conn: AsyncConnection,
    ids: Any,
    rows: Any,
    columns: Sequence[str],
    present: ColumnElement[bool] | None,
    cleared: Mapping[str, Any],
) -> None:
    """Upsert ``rows`` (client_id, *columns) setting only the part this caller owns (the
    columns in ``cleared``); rows of ``ids`` whose part is gone (not ``present``; None: none
    can be) get it cleared, or are deleted when the other part is empty too."""
    insert = dialect_insert(conn, stats).from_select(["client_id", *columns], rows)
    owned = [name for name in columns if name in cleared]
    insert = insert.on_conflict_do_update(
        index_elements=[stats.c.client_id], set_={name: insert.excluded[name] for name in owned}
    )
    await conn.execute(insert)
    if present is None:
        return
    gone = [stats.c.client_id.in_(ids), ~present]
    other_empty = (
        stats.c.last_nps_id.is_(None) if "orders_count" in owned else stats.c.orders_count == 0
    )
    await conn.execute(delete(stats).where(*gone, other_empty))
    await conn.execute(update(stats).where(*gone).values(**cleared))
