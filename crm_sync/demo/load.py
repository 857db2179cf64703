"""Writing the demo business: into the store (COPY on PostgreSQL, executemany on SQLite) or as
the CSV files a 1C export would give (for the import benchmarks)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_sync.demo.generate import DEMO_PREFIX, DemoClient, DemoSpec, generate
from crm_sync.history.client_stats import refresh_client_stats, refresh_last_nps
from crm_sync.history.tables import ClientRow, NpsResponseRow, OrderRow
from povtor.domain import EventKind
from povtor.errors import InvalidInput

CHUNK = 5000  # clients per transaction

COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": ("id", "external_id", "name", "email", "timezone", "preferred_channel",
                "manager", "telegram_chat_id", "telegram_reachable", "created_at",
                "updated_at"),
    "client_phones": ("client_id", "phone", "position"),
    "consents": ("client_id", "channel", "kind", "granted", "source", "at"),
    "orders": ("id", "external_id", "client_id", "placed_at", "delivered_at", "amount",
               "currency", "items", "category", "created_at", "updated_at"),
    "events": ("client_id", "kind", "at", "summary", "ref", "data", "dedup_key"),
    "nps_responses": ("id", "client_id", "score", "reason_text", "reason_category", "channel",
                      "source_kind", "source_id", "answered_at", "dedup_key"),
}  # fmt: skip


class _Ids:
    def __init__(self, client: int, order: int, nps: int) -> None:
        self.client, self.order, self.nps = client, order, nps


def _rows(
    clients: Sequence[DemoClient], ids: _Ids, now: datetime
) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    for c in clients:
        cid = ids.client + c.index
        first_at = c.orders[0].placed_at if c.orders else now
        channel = "telegram" if c.telegram_chat_id else "call"
        out["clients"].append(
            (cid, c.external_id, c.name, c.email, c.timezone, channel, c.manager,
             c.telegram_chat_id, True, first_at, first_at)
        )  # fmt: skip
        out["client_phones"].append((cid, c.phone, 0))
        out["consents"].append((cid, "call", "service", c.call_consent, "demo", first_at))
        if c.telegram_chat_id:
            out["consents"].append((cid, "telegram", "service", True, "bot", first_at))
        if c.index % 10 < 6:  # six in ten agreed to offers (by index: the same data each run)
            for ad_channel in ("call", "telegram"):
                out["consents"].append(
                    (cid, ad_channel, "advertising", True, "demo:website", first_at)
                )
        for o in c.orders:
            oid = ids.order + o.number - 1
            ext = f"{DEMO_PREFIX}O{o.number:08d}"
            items = json.dumps(
                [{"name": o.item, "quantity": str(o.quantity), "price": None, "sku": None,
                  "category": o.category}], ensure_ascii=False
            )  # fmt: skip
            out["orders"].append(
                (oid, ext, cid, o.placed_at, o.delivered_at, o.amount, "RUB", items,
                 o.category, o.placed_at, o.placed_at)
            )  # fmt: skip
        for at in c.unanswered_surveys:
            out["events"].append(_survey_event(cid, c, at))
        for n in c.nps:
            nid = ids.nps
            ids.nps += 1
            source = "message" if n.channel.value == "telegram" else "call"
            out["events"].append(_survey_event(cid, c, n.answered_at))
            out["nps_responses"].append(
                (nid, cid, n.score, n.reason, n.category.value if n.category else None,
                 n.channel.value, source, None, n.answered_at, f"demo-nps:{nid}")
            )  # fmt: skip
            summary = f"Оценка NPS: {n.score}" + (f". {n.reason}" if n.reason else "")
            out["events"].append(
                (cid, EventKind.NPS_ANSWER.value, n.answered_at, summary, f"nps:{nid}",
                 json.dumps({"score": n.score, "channel": n.channel.value}), f"nps:{nid}")
            )  # fmt: skip
    return out


def _survey_event(cid: int, c: DemoClient, at: datetime) -> tuple[Any, ...]:
    kind = EventKind.MESSAGE_OUT if c.telegram_chat_id else EventKind.CALL
    return (cid, kind.value, at - timedelta(hours=1), "Опрос NPS", None,
            json.dumps({"purpose": "nps"}), None)  # fmt: skip


async def _start_ids(conn: AsyncConnection) -> _Ids:
    async def next_id(column: Any) -> int:
        return int(await conn.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1

    return _Ids(
        await next_id(ClientRow.id), await next_id(OrderRow.id), await next_id(NpsResponseRow.id)
    )


async def _write(conn: AsyncConnection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    for table, records in rows.items():
        if not records:
            continue
        columns = COLUMNS[table]
        if conn.dialect.name == "postgresql":
            await driver.copy_records_to_table(table, records=records, columns=list(columns))
        else:
            marks = ", ".join("?" for _ in columns)
            await conn.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                [tuple(_sqlite(v) for v in r) for r in records],
            )


def _sqlite(value: Any) -> Any:
    """Values as SQLAlchemy stores them on SQLite (naive UTC text, numbers as text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


async def load_demo(engine: AsyncEngine, spec: DemoSpec) -> dict[str, int]:
    """Insert the demo business; refuses when demo clients are already there."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).where(ClientRow.external_id.startswith(DEMO_PREFIX))
        )
        if found:
            raise InvalidInput(f"the store already holds {found} demo clients")
        ids = await _start_ids(conn)
    counts = dict.fromkeys(("clients", "orders", "nps_responses", "events"), 0)
    now = datetime.now(UTC)
    clients = generate(spec)
    while chunk := list(islice(clients, CHUNK)):
        rows = _rows(chunk, ids, now)
        first_id = ids.client + chunk[0].index
        async with engine.begin() as conn:
            await _write(conn, rows)
            chunk_ids = ClientRow.id.between(first_id, first_id + len(chunk) - 1)
            await refresh_client_stats(conn, select(ClientRow.id).where(chunk_ids))
            await refresh_last_nps(conn, select(ClientRow.id).where(chunk_ids))
        for name in counts:
            counts[name] += len(rows[name])
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            for table in ("clients", "orders", "nps_responses"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                    )
                )
    if engine.dialect.name == "postgresql":  # visibility map for index-only scans, statistics
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # every table it filled: one without statistics is read by a full scan (the lists'
            # consents were, 0.1 s a page at 100k clients) until autovacuum gets to it
            tables = (
                "clients, client_phones, consents, orders, events, nps_responses, client_stats"
            )
            await conn.execute(text(f"VACUUM ANALYZE {tables}"))
    return counts


CLIENT_HEADER = ["Код клиента", "ФИО", "Телефон", "E-mail", "Город", "Ответственный"]
ORDER_HEADER = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Дата доставки", "Товар",
                "Количество", "Категория"]  # fmt: skip


def _ru_amount(value: Any) -> str:
    whole, _, cents = f"{value:.2f}".partition(".")
    return f"{int(whole):,}".replace(",", "\u00a0") + "," + cents


def write_demo_csv(spec: DemoSpec, folder: Path) -> dict[str, int]:
    """clients.csv and orders.csv as a Russian 1C export would give them (``;``, UTF-8 BOM,
    dd.mm.yyyy hh:mm in Moscow time, amounts like "1 234,50", phones like "8 (979) ...")."""
    from zoneinfo import ZoneInfo

    msk = ZoneInfo("Europe/Moscow")
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"clients": 0, "orders": 0}
    with (
        (folder / "clients.csv").open("w", encoding="utf-8-sig", newline="") as cf,
        (folder / "orders.csv").open("w", encoding="utf-8-sig", newline="") as of,
    ):
        clients_out = csv.writer(cf, delimiter=";")
        orders_out = csv.writer(of, delimiter=";")
        clients_out.writerow(CLIENT_HEADER)
        orders_out.writerow(ORDER_HEADER)
        for c in generate(spec):
            digits = c.phone[2:]
            phone = f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
            clients_out.writerow([c.external_id, c.name, phone, c.email or "", c.city, c.manager])
            counts["clients"] += 1
            for o in c.orders:
                delivered = (
                    o.delivered_at.astimezone(msk).strftime("%d.%m.%Y") if o.delivered_at else ""
                )
                orders_out.writerow([
                    f"{DEMO_PREFIX}O{o.number:08d}", c.external_id,
                    o.placed_at.astimezone(msk).strftime("%d.%m.%Y %H:%M"),
                    _ru_amount(o.amount), delivered, o.item, o.quantity, o.category,
                ])  # fmt: skip
                counts["orders"] += 1
    return counts
