"""ORM rows to domain dataclasses (the rest of Povtor never sees a row)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crm_sync.history.tables import (
    EventRow,
    NpsResponseRow,
    OrderRow,
    TaskRow,
)
from povtor.domain import (
    ChannelKind,
    Client,
    Consent,
    ConsentChannel,
    ContactKind,
    EventKind,
    NpsResponse,
    Order,
    OrderItem,
    ReasonCategory,
    Task,
    TaskStatus,
    TimelineEvent,
)


def utc(value: datetime | None) -> datetime | None:
    """As the ``UtcDateTime`` columns give it: aware UTC (for values read without that type)."""
    if value is None or value.tzinfo is UTC:  # asyncpg gives UTC already: most reads
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def consent_from_values(
    channel: str, kind: str, granted: bool, source: str, at: datetime
) -> Consent:
    return Consent(ConsentChannel(channel), granted, source, utc(at) or at, ContactKind(kind))


def client_from_row(row: Any, phones: Iterable[str], consents: Iterable[Consent]) -> Client:
    """A client from a ``ClientRow`` or any row with its columns."""
    return Client(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        phones=tuple(phones),
        email=row.email,
        timezone=row.timezone,
        preferred_channel=ChannelKind(row.preferred_channel) if row.preferred_channel else None,
        telegram_chat_id=row.telegram_chat_id,
        telegram_reachable=row.telegram_reachable,
        consents=tuple(consents),
        opted_out_at=utc(row.opted_out_at),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def item_from_json(data: dict[str, Any]) -> OrderItem:
    return OrderItem(
        name=str(data.get("name", "")),
        quantity=Decimal(str(data.get("quantity", 1))),
        price=Decimal(str(data["price"])) if data.get("price") is not None else None,
        sku=data.get("sku"),
        category=data.get("category"),
    )


def item_to_json(item: OrderItem) -> dict[str, Any]:
    return {
        "name": item.name,
        "quantity": str(item.quantity),
        "price": str(item.price) if item.price is not None else None,
        "sku": item.sku,
        "category": item.category,
    }


def order_from_row(row: OrderRow) -> Order:
    return Order(
        id=row.id,
        external_id=row.external_id,
        client_id=row.client_id,
        placed_at=row.placed_at,
        delivered_at=row.delivered_at,
        amount=Decimal(row.amount),
        currency=row.currency,
        items=tuple(item_from_json(i) for i in row.items or ()),
    )


def event_from_row(row: EventRow) -> TimelineEvent:
    return TimelineEvent(
        id=row.id,
        client_id=row.client_id,
        kind=EventKind(row.kind),
        at=row.at,
        summary=row.summary,
        ref=row.ref,
        data=dict(row.data or {}),
    )


def nps_from_row(row: NpsResponseRow) -> NpsResponse:
    return NpsResponse(
        id=row.id,
        client_id=row.client_id,
        score=row.score,
        channel=ChannelKind(row.channel),
        answered_at=row.answered_at,
        reason_text=row.reason_text,
        reason_category=ReasonCategory(row.reason_category) if row.reason_category else None,
        source_kind=row.source_kind,
        source_id=row.source_id,
    )


def task_from_row(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        client_id=row.client_id,
        kind=row.kind,
        title=row.title,
        due_at=row.due_at,
        status=TaskStatus(row.status),
        assignee=row.assignee,
        created_at=row.created_at,
        source_ref=row.source_ref,
        note=row.note,
    )
