"""Repeat-sales reports precomputed in the background: one stored report per period the
dashboard offers (``povtor.ports.REPORT_PERIODS``), replaced by each refresh.

The report reads every order of its period (tens of seconds on a large base), so the page reads
the stored one instead. A refresh is SQL awaited on the database (aiosqlite runs SQLite in its
own thread): the worker's event loop stays free while it runs. Periods are computed one after
another, so a refresh holds at most the three connections of one report at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.tables import OrderRow
from crm_sync.metrics.nps_days import NpsDays
from crm_sync.metrics.period import months_between, period_from_dates, trailing_days
from crm_sync.metrics.reports import DEFAULT_ACTIVITY_WINDOW, SqlReports
from crm_sync.metrics.sql import abc_xyz_classes_query
from crm_sync.metrics.tables import ReportCellRow, ReportSnapshotRow
from povtor.db import dialect_insert, table_of, utcnow
from povtor.lifecycle import Periodic
from povtor.ports import REPORT_PERIODS, ReportSnapshot

log = logging.getLogger(__name__)


class ReportSnapshots:
    """Computes, stores and reads the stored report of each period."""

    def __init__(
        self,
        engine: AsyncEngine,
        timezone: str = "Europe/Moscow",
        activity_window: timedelta = DEFAULT_ACTIVITY_WINDOW,
        periods: Mapping[str, int | None] = REPORT_PERIODS,
    ) -> None:
        self._engine = engine
        self._tz = timezone
        self._periods = periods
        self._reports = SqlReports(engine, timezone, activity_window)
        self._days = NpsDays(engine, timezone)

    async def refresh(self, now: datetime | None = None) -> list[ReportSnapshot]:
        """Compute every period's report up to today (of ``now``) and store it."""
        tz = ZoneInfo(self._tz)
        await self._days.store(utcnow())  # the answers by day, up to this moment
        today = (now or utcnow()).astimezone(tz).date()
        first_order = await self._first_order_at()
        first_day = None if first_order is None else first_order.astimezone(tz).date()
        stored = []
        for name, days in self._periods.items():
            first, last = trailing_days(days, today, first_day)
            start, end = period_from_dates(first, last, self._tz)
            report = await self._reports.report(start, end)
            snapshot = ReportSnapshot(name, first, last, utcnow(), report.as_json())
            await self._store(snapshot, self._classes(start, end))
            stored.append(snapshot)
        return stored

    async def stored_period(self, start: datetime, end: datetime) -> str | None:
        """The stored period whose days are exactly [start, end), if any."""
        s = table_of(ReportSnapshotRow).c
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(select(s.period, s.first_day, s.last_day)))
        for period, first, last in rows:
            if period_from_dates(first, last, self._tz) == (start, end):
                return str(period)
        return None

    def cell_members(self, period: str, abc: str, xyz: str | None) -> Select[Any]:
        """The ids of the buyers of a stored period in one cell (``xyz`` None: the whole row
        of the matrix, as the page links it for a period under three months)."""
        k = table_of(ReportCellRow).c
        query = select(k.client_id).where(k.period == period, k.abc == abc)
        return query if xyz is None else query.where(k.xyz == xyz)

    def _classes(self, start: datetime, end: datetime) -> Select[Any]:
        months = months_between(start, end, self._tz)
        offset = ZoneInfo(self._tz).utcoffset(start.replace(tzinfo=None))
        offset_s = int(offset.total_seconds()) if offset is not None else 0
        dialect = self._engine.dialect.name
        return abc_xyz_classes_query(start, end, months, dialect, self._tz, offset_s)

    async def refresh_if_stale(self, max_age: timedelta) -> list[ReportSnapshot]:
        """Refresh when a period has no report, or one older than ``max_age`` or of another
        day: several workers (or a restart) do not compute the same figures twice in a row."""
        now = utcnow()
        today = now.astimezone(ZoneInfo(self._tz)).date()
        for name in self._periods:
            current = await self.latest(name)
            if current is None or current.last != today or now - current.computed_at >= max_age:
                stored = await self.refresh(now)
                log.info("repeat-sales reports stored for %s", ", ".join(self._periods))
                return stored
        return []

    async def latest(self, period: str) -> ReportSnapshot | None:
        s = table_of(ReportSnapshotRow)
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(s).where(s.c.period == period))).mappings().first()
        if row is None:
            return None
        return ReportSnapshot(
            row["period"], row["first_day"], row["last_day"], row["computed_at"], row["report"]
        )

    async def _first_order_at(self) -> datetime | None:
        async with self._engine.connect() as conn:
            return await conn.scalar(select(func.min(OrderRow.placed_at)))

    async def _store(self, snapshot: ReportSnapshot, classes: Select[Any]) -> None:
        """The report and the classes of its buyers in one transaction: a cell lists the
        clients it counts (the classes are read again right after the report: an order
        written in between may move a client, as it would at the next refresh)."""
        values = {
            "first_day": snapshot.first,
            "last_day": snapshot.last,
            "computed_at": snapshot.computed_at,
            "report": dict(snapshot.report),
        }
        async with self._engine.begin() as conn:
            stmt = dialect_insert(conn, table_of(ReportSnapshotRow)).values(
                period=snapshot.period, **values
            )
            await conn.execute(stmt.on_conflict_do_update(index_elements=["period"], set_=values))
            cells = table_of(ReportCellRow)
            await conn.execute(delete(cells).where(cells.c.period == snapshot.period))
            found = classes.subquery("classes")
            await conn.execute(
                insert(cells).from_select(
                    ["period", "client_id", "abc", "xyz"],
                    select(literal(snapshot.period), found.c.client_id, found.c.abc, found.c.xyz),
                )
            )


class ReportRefresher:
    """The worker's service that keeps the stored reports current: stored again after every
    planning pass (``planned``, wired to the planner in ``app``), so a page never shows
    figures older than the last pass; between passes, when missing, stale (``every_s``) or of
    another day. A pass that ends while a refresh runs is followed by one more refresh."""

    name = "report-snapshots"

    def __init__(self, snapshots: ReportSnapshots, every_s: float) -> None:
        self._snapshots = snapshots
        self._every_s = every_s
        self._passed = asyncio.Event()
        self._loop = Periodic(
            "storing the repeat-sales reports", self._round, every_s, wake=self._passed
        )

    @property
    def refreshes(self) -> int:
        """Finished refreshes, failed or not."""
        return self._loop.rounds

    def planned(self) -> None:
        """A planning pass has ended: refresh as soon as the current refresh (if any) ends."""
        self._passed.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self._loop.run(stop)

    async def _round(self) -> None:
        if self._passed.is_set():  # cleared first: a pass ending during this refresh counts
            self._passed.clear()
            await self._snapshots.refresh()
            log.info("repeat-sales reports stored after a planning pass")
        else:
            await self._snapshots.refresh_if_stale(timedelta(seconds=self._every_s))
