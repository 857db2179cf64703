"""`povtor client show`: a client with phones, orders and timeline, as JSON or on a terminal."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from povtor.db import session_factory
from povtor.domain import Client, Order, TimelineEvent
from povtor.errors import NotFound


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def client_json(client: Client) -> dict[str, Any]:
    return {
        "id": client.id,
        "external_id": client.external_id,
        "name": client.name,
        "phones": list(client.phones),
        "email": client.email,
        "timezone": client.timezone,
        "preferred_channel": client.preferred_channel,
        "telegram_chat_id": client.telegram_chat_id,
        "telegram_reachable": client.telegram_reachable,
        "opted_out_at": _iso(client.opted_out_at),
        "consents": [
            {
                "channel": c.channel,
                "granted": c.granted,
                "source": c.source,
                "at": _iso(c.at),
                "kind": c.kind,
            }
            for c in client.consents
        ],
        "created_at": _iso(client.created_at),
        "updated_at": _iso(client.updated_at),
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "external_id": order.external_id,
        "placed_at": _iso(order.placed_at),
        "delivered_at": _iso(order.delivered_at),
        "amount": str(order.amount),
        "currency": order.currency,
        "items": [
            {
                "name": i.name,
                "quantity": str(i.quantity),
                "price": str(i.price) if i.price is not None else None,
                "category": i.category,
            }
            for i in order.items
        ],
    }


def event_json(event: TimelineEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "at": _iso(event.at),
        "summary": event.summary,
        "ref": event.ref,
        "data": dict(event.data),
    }


async def load_client_view(engine: AsyncEngine, external_id: str, limit: int) -> dict[str, Any]:
    """``{"client": ..., "orders": [...newest first], "timeline": [...newest first]}``."""
    store = SqlHistoryStore(session_factory(engine))
    client = await store.find_client(external_id)
    if client is None:
        raise NotFound(f"no client with external id {external_id!r}")
    orders = await store.list_orders(client.id, limit=limit)
    events = await store.timeline(client.id, limit=limit)
    return {
        "client": client_json(client),
        "orders": [order_json(o) for o in orders],
        "timeline": [event_json(e) for e in events],
    }


def render_client_view(view: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    client = view["client"]
    console.print(f"[bold]{client['name'] or '(без имени)'}[/bold]  {client['external_id']}")
    console.print(f"Телефоны: {', '.join(client['phones']) or '-'}")
    console.print(f"E-mail: {client['email'] or '-'}   Часовой пояс: {client['timezone']}")
    if client["opted_out_at"]:
        console.print(f"[red]Отказался от контактов {client['opted_out_at']}[/red]")
    orders = Table(title="Заказы")
    for column in ("Номер", "Дата", "Сумма", "Доставлен"):
        orders.add_column(column)
    for o in view["orders"]:
        orders.add_row(
            o["external_id"], o["placed_at"], f"{o['amount']} {o['currency']}", o["delivered_at"]
        )
    console.print(orders)
    timeline = Table(title="История")
    for column in ("Когда", "Что", "Описание"):
        timeline.add_column(column)
    for e in view["timeline"]:
        timeline.add_row(e["at"], e["kind"], e["summary"])
    console.print(timeline)
