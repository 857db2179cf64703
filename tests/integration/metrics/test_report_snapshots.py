"""The stored repeat-sales reports: equal to the report computed on request for the same days,
replaced by each refresh, refreshed only when missing or stale, and stored by the worker's own
background service (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo
from crm_sync.history.store import OrderInput, SqlHistoryStore
from crm_sync.history.tables import ClientRow, OrderRow
from crm_sync.metrics.period import period_from_dates
from crm_sync.metrics.reports import SqlReports
from crm_sync.metrics.snapshots import ReportSnapshots
from crm_sync.metrics.tables import ReportSnapshotRow
from povtor.db import session_factory
from povtor.ports import REPORT_PERIODS
from povtor.settings import (
    AsrSettings,
    DashboardSettings,
    OutreachSettings,
    Settings,
    SipSettings,
    TelegramSettings,
)
from tests.integration.imports.conftest import run_povtor
from tests.integration.schema import schema_drift
from tests.logged import logged

UNTIL = date(2026, 1, 31)
NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)  # 15:00 in Moscow: today is UNTIL
MOSCOW = ZoneInfo("Europe/Moscow")


async def test_stored_reports_equal_the_report_computed_on_request(engine: AsyncEngine) -> None:
    await load_demo(engine, DemoSpec(clients=120, seed=3, until=UNTIL))
    snapshots = ReportSnapshots(engine, "Europe/Moscow")
    stored = await snapshots.refresh(NOW)
    assert [s.period for s in stored] == list(REPORT_PERIODS)
    async with engine.connect() as conn:
        first_order = await conn.scalar(select(func.min(OrderRow.placed_at)))
    expected_first = {
        "month": date(2026, 1, 2),
        "quarter": date(2025, 11, 3),
        "year": date(2025, 2, 1),
        "all": first_order.astimezone(MOSCOW).date(),
    }
    for name in REPORT_PERIODS:
        snapshot = await snapshots.latest(name)
        assert snapshot is not None
        assert (snapshot.first, snapshot.last) == (expected_first[name], UNTIL), name
        on_request = await SqlReports(engine, "Europe/Moscow").report(
            *period_from_dates(snapshot.first, snapshot.last, "Europe/Moscow")
        )
        assert snapshot.report == on_request.as_json(), name
        assert on_request.orders > 0, name
    every = await snapshots.latest("all")
    assert every is not None
    assert every.report["orders"] == await _count(engine, OrderRow)


async def test_a_refresh_replaces_each_period_and_skips_fresh_reports(
    engine: AsyncEngine,
) -> None:
    await load_demo(engine, DemoSpec(clients=30, seed=4, until=UNTIL))
    snapshots = ReportSnapshots(engine, "Europe/Moscow")
    assert await snapshots.latest("year") is None
    first = await snapshots.refresh_if_stale(timedelta(hours=1))  # none stored: computed
    assert len(first) == len(REPORT_PERIODS)
    assert await snapshots.refresh_if_stale(timedelta(hours=1)) == []  # fresh: left alone
    again = await snapshots.refresh_if_stale(timedelta(0))  # stale at once: computed again
    assert len(again) == len(REPORT_PERIODS)
    assert await _count(engine, ReportSnapshotRow) == len(REPORT_PERIODS)
    year = await snapshots.latest("year")
    assert year is not None
    assert year.computed_at == again[2].computed_at


async def _count(engine: AsyncEngine, row: type) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(row)) or 0)


def _worker_settings(db_url: str, folder: Path, **more: Any) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=folder,
        metrics_port=0,
        secret_key="test-secret-key",  # type: ignore[arg-type]
        sip=SipSettings(enabled=False),
        telegram=TelegramSettings(bot_token=None),
        dashboard=DashboardSettings(port=0),
        asr=AsrSettings(background=False),
        _env_file=None,
        **more,
    )


async def _worker_until(settings: Settings, *said: asyncio.Event) -> None:
    """Run the worker (every part the settings enable) until each event is set, then stop it."""
    from app.runtime import run
    from app.wiring import build_adapters

    stop = asyncio.Event()
    task = asyncio.create_task(
        run(settings, stop=stop, handle_signals=False, adapters=build_adapters)
    )
    try:
        async with asyncio.timeout(60):
            for event in said:
                await event.wait()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_worker_stores_the_reports_in_the_background(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_demo(engine, DemoSpec(clients=40, seed=5, until=UNTIL))
    settings = _worker_settings(db_url, tmp_path)
    with logged("crm_sync.metrics.snapshots", "repeat-sales reports stored") as stored:
        await _worker_until(settings, stored)  # the service's own word, from its first round
    year = await ReportSnapshots(engine, settings.default_timezone).latest("year")
    assert year is not None
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.default_timezone)).date()
    assert year.last == today
    assert year.first == today - timedelta(days=364)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_worker_stores_the_reports_again_after_every_planning_pass(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_demo(engine, DemoSpec(clients=40, seed=5, until=UNTIL))
    snapshots = ReportSnapshots(engine)
    before = {s.period: s for s in await snapshots.refresh()}  # fresh: no periodic refresh
    store = SqlHistoryStore(session_factory(engine))
    async with engine.connect() as conn:
        code = await conn.scalar(select(func.min(ClientRow.external_id)))
    placed = datetime.now(UTC) - timedelta(hours=1)
    await store.add_order(OrderInput("after-stored", str(code), placed, Decimal("100")))
    # the refresh interval stays 600 s: only the pass makes the worker store them again now
    settings = _worker_settings(db_url, tmp_path, outreach=OutreachSettings(plan_interval_s=3600))
    with (
        logged("outreach.planner", "planning pass as of") as planned,
        logged("crm_sync.metrics.snapshots", "stored after a planning pass") as stored,
    ):
        await _worker_until(settings, planned, stored)
    for name in REPORT_PERIODS:
        after = await snapshots.latest(name)
        assert after is not None
        assert after.computed_at > before[name].computed_at
    year = await snapshots.latest("year")
    assert year is not None
    assert year.report["orders"] == before["year"].report["orders"] + 1  # the order is in


async def test_migration_creates_exactly_the_declared_snapshot_table(engine: AsyncEngine) -> None:
    assert await schema_drift(engine, "report_snapshots") == []


async def test_report_store_command_stores_every_period_now(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_demo(engine, DemoSpec(clients=20, seed=6, until=UNTIL))
    refused = run_povtor(db_url, "report", "--store", "--from", "2025-01-01", cwd=tmp_path)
    assert refused.returncode != 0
    assert await ReportSnapshots(engine).latest("year") is None
    done = run_povtor(db_url, "report", "--store", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in REPORT_PERIODS:
        assert f"stored {name}:" in done.stdout
        assert await ReportSnapshots(engine).latest(name) is not None
