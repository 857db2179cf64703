"""Importing orders: unknown clients, updates, timeline events, XLSX cells."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import EventRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import import_file
from povtor.domain import EventKind
from tests.integration.imports.conftest import read_rejects, write_csv

ORDERS = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Дата доставки"]


async def _clients(engine: AsyncEngine, files: Path, *ids: str) -> None:
    rows: list[list[object]] = [["client_id", "name"], *([i, f"Клиент {i}"] for i in ids)]
    await import_file(engine, Kind.CLIENTS, write_csv(files / "clients.csv", rows))


async def _order_events(engine: AsyncEngine, store: SqlHistoryStore, *clients: str) -> int:
    """Order entries in these clients' timelines; the import writes no event rows for them."""
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(EventRow)) == 0
    count = 0
    for external_id in clients:
        client = await store.find_client(external_id)
        assert client is not None
        count += sum(e.kind is EventKind.ORDER for e in await store.timeline(client.id))
    return count


async def test_orders_are_imported_with_timeline_and_unknown_clients_rejected(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "C1", "C2")
    path = write_csv(
        files / "orders.csv",
        [
            ORDERS,
            ["O1", "C1", "01.02.2024", "1 234,50", "03.02.2024 14:00"],
            ["O2", "C9", "01.02.2024", "100", ""],
            ["O3", "C2", "2024-03-01T10:00:00", "12.5", ""],
            ["O4", "C2", "31.02.2024", "10", ""],
            ["O5", "C2", "01.03.2024", "десять", ""],
        ],
    )
    summary = await import_file(engine, Kind.ORDERS, path)
    again = await import_file(engine, Kind.ORDERS, path)

    assert (summary.created, summary.rejected) == (2, 3)
    assert (again.created, again.unchanged, again.rejected) == (0, 2, 3)
    reasons = {r[0]: r[1] for r in read_rejects(path.with_name("orders.csv.rejects.csv"))}
    assert "C9" in reasons["3"]
    assert "дата" in reasons["5"]
    assert "сумма" in reasons["6"]
    c1 = await store.find_client("C1")
    assert c1 is not None
    [order] = await store.list_orders(c1.id)
    assert order.amount == Decimal("1234.50")
    assert order.placed_at == datetime(2024, 1, 31, 21, 0, tzinfo=UTC)
    assert order.delivered_at == datetime(2024, 2, 3, 11, 0, tzinfo=UTC)
    [event] = await store.timeline(c1.id)
    assert event.kind is EventKind.ORDER
    assert event.summary == "Заказ O1 на 1234.50 RUB"
    assert event.ref == f"order:{order.id}"
    assert await _order_events(engine, store, "C1", "C2") == 2


async def test_changed_order_is_updated_and_its_timeline_entry_follows(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "C1")
    write_csv(files / "a.csv", [ORDERS, ["O1", "C1", "01.02.2024", "100", ""]])
    write_csv(files / "b.csv", [ORDERS, ["O1", "C1", "01.02.2024", "150,00", "05.02.2024"]])
    await import_file(engine, Kind.ORDERS, files / "a.csv")

    summary = await import_file(engine, Kind.ORDERS, files / "b.csv")

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
    client = await store.find_client("C1")
    assert client is not None
    [order] = await store.list_orders(client.id)
    assert order.amount == Decimal("150.00")
    assert order.delivered_at is not None
    [event] = await store.timeline(client.id)
    assert event.summary == "Заказ O1 на 150.00 RUB"
    assert await _order_events(engine, store, "C1") == 1


async def test_xlsx_with_title_rows_and_native_cells(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "1001")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Отчёт по продажам за февраль 2024"])
    sheet.append([])
    sheet.append(["Номер документа", "Код контрагента", "Дата документа", "Сумма документа"])
    sheet.append(["ЗК-1", 1001, datetime(2024, 2, 1, 10, 30), 1234.5])
    sheet.append(["ЗК-2", 1001, datetime(2024, 2, 2), "2 000,00"])
    path = files / "1c.xlsx"
    book.save(path)

    summary = await import_file(engine, Kind.ORDERS, path)

    assert (summary.created, summary.rejected) == (2, 0)
    client = await store.find_client("1001")
    assert client is not None
    orders = await store.list_orders(client.id)
    assert [(o.external_id, o.amount) for o in orders] == [
        ("ЗК-2", Decimal("2000.00")),
        ("ЗК-1", Decimal("1234.50")),
    ]
    assert orders[1].placed_at == datetime(2024, 2, 1, 7, 30, tzinfo=UTC)


async def test_an_import_gives_its_sqlite_connection_back_with_the_usual_settings(
    engine: AsyncEngine, files: Path
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page cache and checkpoint interval")
    await _clients(engine, files, "C1")
    path = write_csv(files / "orders.csv", [ORDERS, ["O1", "C1", "01.02.2024 10:00", "10", ""]])

    assert (await import_file(engine, Kind.ORDERS, path)).created == 1
    async with engine.connect() as conn:  # the pool's one connection, the import's too
        checkpoint = await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")
        cache = await conn.exec_driver_sql("PRAGMA cache_size")
        assert (checkpoint.scalar(), cache.scalar()) == (1000, -2000)
