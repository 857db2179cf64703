"""The ORDER entries of a client's timeline, read straight from ``orders`` (crm_sync_0011).

An order is not copied into ``events``: that row per order was the costliest write of an
import (one more row and three index entries per order). The timeline reads a client's events
and orders and merges them by time; an order's entry has the shape its event row had (summary,
``ref`` "order:<id>", data with the external id and the amount) and an id in a range of its
own, ``ORDER_ENTRY_BASE`` + the order's id, so one id pages the merged timeline
(``before_id``) and never meets an event's id. The timeline feed the CRM push follows carries
events only: the push keeps no orders (``sync_kind`` of an order is None).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select

from crm_sync.history import keyset
from crm_sync.history.tables import OrderRow
from povtor.domain import EventKind, TimelineEvent

# Event ids stay far below it; the entries' ids stay below 2**53 (exact in JSON numbers).
ORDER_ENTRY_BASE = 10**15


def is_order_entry(entry_id: int) -> bool:
    return entry_id >= ORDER_ENTRY_BASE


def order_entry(
    *,
    order_id: int,
    client_id: int,
    external_id: str,
    placed_at: datetime,
    amount: Decimal,
    currency: str,
) -> TimelineEvent:
    """The timeline entry of an order (the amount as stored: two decimal places)."""
    return TimelineEvent(
        id=ORDER_ENTRY_BASE + order_id,
        client_id=client_id,
        kind=EventKind.ORDER,
        at=placed_at,
        summary=f"Заказ {external_id} на {amount} {currency}",
        ref=f"order:{order_id}",
        data={"external_id": external_id, "amount": str(amount)},
    )


ENTRY_COLUMNS = (
    OrderRow.id,
    OrderRow.client_id,
    OrderRow.external_id,
    OrderRow.placed_at,
    OrderRow.amount,
    OrderRow.currency,
)


def order_entries_query(
    client_id: int, before: tuple[datetime, int] | None, limit: int
) -> Select[Any]:
    """A client's newest order entries (by time, then entry id), before ``(at, entry id)``."""
    query = select(*ENTRY_COLUMNS).where(OrderRow.client_id == client_id)
    if before is not None:
        at, entry_id = before
        order_id = entry_id - ORDER_ENTRY_BASE
        query = query.where(keyset.before(OrderRow.placed_at, OrderRow.id, at, order_id))
    return query.order_by(OrderRow.placed_at.desc(), OrderRow.id.desc()).limit(limit)


# the first page (no ``before``) with the client and limit bound: built once
ORDER_ENTRIES_FIRST = (
    select(*ENTRY_COLUMNS)
    .where(OrderRow.client_id == bindparam("client_id"))
    .order_by(OrderRow.placed_at.desc(), OrderRow.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def order_entries(rows: Sequence[Any]) -> list[TimelineEvent]:
    return [
        order_entry(
            order_id=r.id,
            client_id=r.client_id,
            external_id=r.external_id,
            placed_at=r.placed_at,
            amount=r.amount,
            currency=r.currency,
        )
        for r in rows
    ]


def merged_timeline(
    events: list[TimelineEvent], orders: Sequence[Any], limit: int
) -> list[TimelineEvent]:
    """A page of the timeline: ``events`` and the entries of ``orders`` (rows with the order
    columns), newest first by (time, entry id), at most ``limit``."""
    merged = events + order_entries(orders)
    merged.sort(key=lambda e: (e.at, e.id), reverse=True)
    return merged[:limit]
