"""`povtor demo-data` into both stores, and as CSV files that the importer reads back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo, write_demo_csv
from crm_sync.history.store import SqlHistoryStore
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import import_file
from crm_sync.metrics.period import period_from_dates
from crm_sync.metrics.reports import SqlReports
from povtor.errors import InvalidInput
from tests.integration.imports.conftest import last_json, run_povtor

SPEC = DemoSpec(clients=400, seed=3, until=date(2025, 6, 30))


async def test_demo_loads_a_consistent_business(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    counts = await load_demo(engine, SPEC)
    assert counts["clients"] == 400
    assert counts["orders"] > 1000
    client = await store.find_client("DEMO-0000001")
    assert client is not None
    assert client.phones
    assert client.phones[0].startswith("+79790")
    orders = await store.list_orders(client.id, limit=1000)
    timeline = await store.timeline(client.id, limit=1000)
    assert len([e for e in timeline if e.kind == "order"]) == len(orders)
    start, end = period_from_dates(date(2024, 7, 1), date(2025, 6, 30), "Europe/Moscow")
    report = await SqlReports(engine).report(start, end)
    assert report.orders > 0
    assert report.nps.responses > 0
    assert report.nps.asked >= report.nps.responses
    with pytest.raises(InvalidInput, match="already holds 400 demo clients"):
        await load_demo(engine, SPEC)


async def test_demo_csv_files_import_without_rejects(engine: AsyncEngine, tmp_path: Path) -> None:
    counts = write_demo_csv(SPEC, tmp_path)
    clients = await import_file(engine, Kind.CLIENTS, tmp_path / "clients.csv")
    orders = await import_file(engine, Kind.ORDERS, tmp_path / "orders.csv")
    assert (clients.created, clients.rejected) == (counts["clients"], 0)
    assert (orders.created, orders.rejected) == (counts["orders"], 0)


def test_demo_data_and_report_through_the_cli(db_url: str, tmp_path: Path) -> None:
    loaded = run_povtor(
        db_url, "demo-data", "--clients", "50", "--seed", "2", "--json", cwd=tmp_path
    )
    assert loaded.returncode == 0, loaded.stderr
    assert last_json(loaded.stdout)["clients"] == 50
    report = run_povtor(db_url, "report", "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    figures = last_json(report.stdout)
    assert {"nps", "retention_rate", "abc", "xyz", "tenure", "ltv"} <= set(figures)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_demo_leaves_statistics_for_every_table_it_fills(engine: AsyncEngine) -> None:
    """A table without statistics is planned as a full scan (the lists' consents were)."""
    from sqlalchemy import text

    counts = await load_demo(engine, DemoSpec(clients=50, seed=2, until=date(2026, 1, 31)))
    async with engine.connect() as conn:
        analysed = set(
            await conn.scalars(
                text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
            )
        )
    filled = {name for name, n in counts.items() if n} | {"client_phones", "consents"}
    assert filled <= analysed
