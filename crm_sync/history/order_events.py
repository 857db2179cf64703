"""The ORDER entry of a client's timeline: one shape for the store, imports and the demo."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from povtor.domain import EventKind


def order_dedup_key(external_id: str) -> str:
    return f"order:{external_id}"


def order_event_values(
    *,
    order_id: int,
    client_id: int,
    external_id: str,
    placed_at: datetime,
    amount: Decimal,
    currency: str,
) -> dict[str, Any]:
    """Column values of the ``events`` row that records an order (deduplicated per order)."""
    return {
        "client_id": client_id,
        "kind": EventKind.ORDER.value,
        "at": placed_at,
        "summary": f"Заказ {external_id} на {amount} {currency}",
        "ref": f"order:{order_id}",
        "data": {"external_id": external_id, "amount": str(amount)},
        "dedup_key": order_dedup_key(external_id),
    }
