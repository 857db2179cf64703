"""Order batches through the staging table: repeated ids, the client summary kept in step."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.order_events import ORDER_ENTRY_BASE
from crm_sync.history.store import OrderInput, SqlHistoryStore
from crm_sync.history.tables import ClientRow, ClientStatsRow, EventRow, OrderRow
from crm_sync.imports.headers import Kind, map_columns
from crm_sync.imports.order_batches import drop_staging, prepare_staging, write_orders
from crm_sync.imports.order_rows import OrderRows
from crm_sync.imports.records import ParseContext
from crm_sync.imports.run import ImportOptions, import_file
from povtor.domain import EventKind
from tests.integration.imports.conftest import write_csv

ORDERS = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Валюта"]


async def _clients(engine: AsyncEngine, files: Path, *ids: str) -> None:
    rows: list[list[object]] = [["client_id", "name"], *([i, f"Клиент {i}"] for i in ids)]
    await import_file(engine, Kind.CLIENTS, write_csv(files / "clients.csv", rows))


async def _stats(engine: AsyncEngine) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kept summary, summary computed from orders now), by client external id."""
    async with engine.connect() as conn:
        kept = await conn.execute(
            select(
                ClientRow.external_id,
                ClientStatsRow.first_order_at,
                ClientStatsRow.last_order_at,
                ClientStatsRow.orders_count,
                ClientStatsRow.revenue,
            ).join(ClientRow, ClientRow.id == ClientStatsRow.client_id)
        )
        fresh = await conn.execute(
            select(
                ClientRow.external_id,
                func.min(OrderRow.placed_at),
                func.max(OrderRow.placed_at),
                func.count(),
                func.sum(OrderRow.amount),
            )
            .join(ClientRow, ClientRow.id == OrderRow.client_id)
            .group_by(ClientRow.external_id)
        )

        def by_client(rows: Any) -> dict[str, Any]:
            return {
                r[0]: (r[1], r[2], r[3], Decimal(str(r[4])).quantize(Decimal("0.01")))
                for r in rows
            }

        return by_client(kept), by_client(fresh)


async def test_repeated_order_ids_apply_in_file_order_across_batches(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "C1", "C2")
    path = write_csv(
        files / "orders.csv",
        [
            ORDERS,
            ["O1", "C1", "01.02.2024", "100", ""],
            ["O1", "C1", "01.02.2024", "100", ""],  # the same again: unchanged
            ["O2", "C1", "02.02.2024", "50", ""],
            ["O1", "C2", "03.02.2024", "120", "USD"],  # moved, new amount: updated
            ["O3", "C2", "04.02.2024", "10", ""],
            ["O1", "C2", "03.02.2024", "120", ""],  # no currency given: keeps USD, unchanged
        ],
    )

    summary = await import_file(engine, Kind.ORDERS, path, ImportOptions(batch_size=2))

    assert (summary.created, summary.updated, summary.unchanged) == (3, 1, 2)
    c2 = await store.find_client("C2")
    assert c2 is not None
    orders = {o.external_id: o for o in await store.list_orders(c2.id)}
    assert orders["O1"].amount == Decimal("120.00")
    assert orders["O1"].currency == "USD"
    assert orders["O1"].placed_at == datetime(2024, 2, 2, 21, 0, tzinfo=UTC)
    summaries = [e.summary for e in await store.timeline(c2.id)]
    assert "Заказ O1 на 120.00 USD" in summaries
    kept, fresh = await _stats(engine)
    assert kept == fresh
    assert kept["C1"][2:] == (1, Decimal("50.00"))


async def test_client_summary_follows_reimports_moves_amounts_and_store_orders(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "C1", "C2", "C3")
    first = write_csv(
        files / "a.csv",
        [
            ORDERS,
            ["O1", "C1", "01.02.2024", "100", ""],
            ["O2", "C1", "01.03.2024", "200", ""],
            ["O3", "C2", "01.04.2024", "300", ""],
        ],
    )
    second = write_csv(
        files / "b.csv",
        [
            ORDERS,
            ["O1", "C2", "01.02.2024", "100", ""],  # O1 moves from C1 to C2
            ["O2", "C1", "15.01.2024", "250,50", ""],  # new date and amount
            ["O3", "C2", "01.04.2024", "300", ""],
        ],
    )
    moved_all = write_csv(
        files / "c.csv", [ORDERS, ["O2", "C3", "15.01.2024", "250,50", ""]]
    )  # C1 is left without orders

    await import_file(engine, Kind.ORDERS, first)
    await import_file(engine, Kind.ORDERS, first)
    kept, fresh = await _stats(engine)
    assert kept == fresh
    assert kept["C1"][2:] == (2, Decimal("300.00"))

    await import_file(engine, Kind.ORDERS, second)
    kept, fresh = await _stats(engine)
    assert kept == fresh
    assert kept["C1"][0] == datetime(2024, 1, 14, 21, 0, tzinfo=UTC)
    assert kept["C2"][2:] == (2, Decimal("400.00"))

    await import_file(engine, Kind.ORDERS, moved_all)
    await store.add_order(
        OrderInput("S1", "C2", datetime(2025, 5, 1, tzinfo=UTC), Decimal("99.90"))
    )
    kept, fresh = await _stats(engine)
    assert kept == fresh
    assert "C1" not in kept
    assert kept["C2"][1:] == (datetime(2025, 5, 1, tzinfo=UTC), 3, Decimal("499.90"))


async def test_imported_order_event_has_the_store_shape(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await _clients(engine, files, "C1")
    await import_file(
        engine,
        Kind.ORDERS,
        write_csv(files / "o.csv", [ORDERS, ["O1", "C1", "01.02.2024", "7", ""]]),
    )
    await store.add_order(
        OrderInput("O2", "C1", datetime(2024, 2, 2, tzinfo=UTC), Decimal("7.00"))
    )

    client = await store.find_client("C1")
    assert client is not None
    ids = {o.external_id: o.id for o in await store.list_orders(client.id)}
    entries = sorted(await store.timeline(client.id), key=lambda e: e.data["external_id"])

    assert [(e.kind, e.data, e.ref, e.id) for e in entries] == [
        (EventKind.ORDER, {"external_id": "O1", "amount": "7.00"}, f"order:{ids['O1']}",
         ORDER_ENTRY_BASE + ids["O1"]),
        (EventKind.ORDER, {"external_id": "O2", "amount": "7.00"}, f"order:{ids['O2']}",
         ORDER_ENTRY_BASE + ids["O2"]),
    ]  # fmt: skip
    assert [e.summary for e in entries] == ["Заказ O1 на 7.00 RUB", "Заказ O2 на 7.00 RUB"]
    async with engine.connect() as conn:  # read from orders: no copy in events
        assert await conn.scalar(select(func.count()).select_from(EventRow)) == 0


async def test_sqlite_batches_commit_together_every_commit_rows(
    engine: AsyncEngine, db_url: str, files: Path
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the commit interval of SQLite imports (PostgreSQL commits every batch)")
    await _clients(engine, files, "C1")
    rows = [[f"O{n}", "C1", "01.02.2024", "10", ""] for n in range(1, 7)]
    path = write_csv(files / "orders.csv", [ORDERS, *rows])
    seen: list[int] = []

    def committed_orders(_done: int, _total: int | None) -> None:
        """Called after each batch is written: what another connection sees by then."""
        with contextlib.closing(sqlite3.connect(make_url(db_url).database or "")) as other:
            seen.append(other.execute("SELECT count(*) FROM orders").fetchone()[0])

    summary = await import_file(
        engine,
        Kind.ORDERS,
        path,
        ImportOptions(batch_size=2, commit_rows=4),
        progress=committed_orders,
    )

    assert summary.created == 6
    assert seen == [0, 4, 4, 6]  # the last, empty batch ends the file: commit


async def test_one_batch_resolves_new_changed_moved_unchanged_and_unknown_rows(
    engine: AsyncEngine, files: Path
) -> None:
    """Every outcome in the same batch: each row is resolved once, against the stored orders."""
    await _clients(engine, files, "C1", "C2")
    await import_file(
        engine,
        Kind.ORDERS,
        write_csv(
            files / "a.csv",
            [
                ORDERS,
                ["O1", "C1", "01.02.2024", "100", ""],
                ["O2", "C1", "02.02.2024", "200", ""],
                ["O3", "C1", "03.02.2024", "300", ""],
            ],
        ),
    )
    second = write_csv(
        files / "b.csv",
        [
            ORDERS,
            ["O1", "C1", "01.02.2024", "100", ""],  # unchanged
            ["O2", "C1", "02.02.2024", "250", ""],  # new amount
            ["O3", "C2", "03.02.2024", "300", ""],  # moved to C2
            ["O4", "C2", "04.02.2024", "400", ""],  # new
            ["O5", "NOBODY", "05.02.2024", "500", ""],  # unknown client
            ["O1", "NOBODY", "01.02.2024", "100", ""],  # known order, unknown client
        ],
    )

    summary = await import_file(engine, Kind.ORDERS, second, ImportOptions(batch_size=100))

    assert (summary.created, summary.updated, summary.unchanged) == (1, 2, 1)
    assert summary.rejected == 2
    async with engine.connect() as conn:
        stored = await conn.execute(
            select(OrderRow.external_id, ClientRow.external_id, OrderRow.amount)
            .join(ClientRow, ClientRow.id == OrderRow.client_id)
            .order_by(OrderRow.external_id)
        )
        assert [(o, c, Decimal(str(a))) for o, c, a in stored] == [
            ("O1", "C1", Decimal("100")),
            ("O2", "C1", Decimal("250")),
            ("O3", "C2", Decimal("300")),
            ("O4", "C2", Decimal("400")),
        ]
    kept, fresh = await _stats(engine)
    assert kept == fresh


async def test_postgres_plan_settings_end_with_the_batch_transaction(
    engine: AsyncEngine, db_url: str, files: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the join settings of a batch are PostgreSQL's")
    await _clients(engine, files, "C1")
    orders = OrderRows(
        map_columns(Kind.ORDERS, ORDERS, {}),
        ParseContext("RU", ZoneInfo("Europe/Moscow"), "RUB"),
    )
    settings = (
        "SELECT name, setting, reset_val FROM pg_settings "
        "WHERE name IN ('enable_hashjoin', 'enable_mergejoin', 'jit') ORDER BY name"
    )
    async with engine.connect() as conn:
        await prepare_staging(conn)
        row = orders.staged(2, ["O1", "C1", "01.02.2024", "10", ""])
        result = await write_orders(conn, [row], default_currency="RUB", now=datetime.now(UTC))
        assert result.counts["created"] == 1
        during = (await conn.exec_driver_sql(settings)).all()
        assert [(name, value) for name, value, _ in during] == [
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            ("jit", "off"),
        ]
        await conn.commit()
        after = (await conn.exec_driver_sql(settings)).all()
        assert [value for _, value, _ in after] == [reset for _, _, reset in after]
        assert after[0][1] == "on"  # the server's default: a batch's setting did not stay
        await drop_staging(conn)
        await conn.commit()
