"""``povtor.ports.Reports`` over the history store, plus the full repeat-sales report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.metrics import formulas as f
from crm_sync.metrics.period import months_between
from crm_sync.metrics.report import ClassCell, RepeatSalesReport, TenureCohort
from crm_sync.metrics.sql import abc_xyz_query, clients_query, nps_query
from povtor.domain import NpsSummary

DEFAULT_ACTIVITY_WINDOW = timedelta(days=365)
PG_WORK_MEM = "256MB"


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


class SqlReports:
    """Figures computed by the database (aggregates, windows), never by loading rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        timezone: str = "Europe/Moscow",
        activity_window: timedelta = DEFAULT_ACTIVITY_WINDOW,
    ) -> None:
        self._engine = engine
        self._tz = timezone
        self._window = activity_window

    async def _rows(self, query: Select[Any]) -> list[Any]:
        async with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Aggregates over millions of rows: hash in memory instead of spilling to disk,
                # and no JIT (compiling these plans costs seconds and saves less).
                await conn.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
                await conn.execute(text("SET LOCAL jit = off"))
                # The three statements already run side by side: parallel workers would add
                # partial aggregates over the same groups (more CPU) for little wall time.
                await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            return list((await conn.execute(query)).mappings())

    async def nps(self, start: datetime, end: datetime) -> NpsSummary:
        [row] = await self._rows(nps_query(start, end))
        return NpsSummary(
            start=start,
            end=end,
            promoters=int(row["promoters"]),
            passives=int(row["passives"]),
            detractors=int(row["detractors"]),
            responses=int(row["responses"]),
            asked=int(row["asked"] or 0),
        )

    async def report(self, start: datetime, end: datetime) -> RepeatSalesReport:
        months = months_between(start, end, self._tz)
        offset = ZoneInfo(self._tz).utcoffset(start.replace(tzinfo=None))
        offset_s = int(offset.total_seconds()) if offset is not None else 0
        dialect = self._engine.dialect.name
        # Separate connections: PostgreSQL runs the scans side by side.
        async with asyncio.TaskGroup() as group:
            clients_task = group.create_task(self._rows(clients_query(start, end, self._window)))
            matrix_task = group.create_task(
                self._rows(abc_xyz_query(start, end, months, dialect, self._tz, offset_s))
            )
            nps_task = group.create_task(self.nps(start, end))
        c = clients_task.result()[0]
        matrix_rows = matrix_task.result()
        nps_summary = nps_task.result()
        revenue = _decimal(c["revenue"])
        orders, buyers = int(c["orders"]), int(c["buyers"])
        tenure = []
        for name, years in f.TENURE_COHORTS:
            size, again = int(c[f"cohort_{name}"]), int(c[f"again_{name}"])
            coefficient = f.ratio(again, size)
            tenure.append(
                TenureCohort(name, years, size, again, coefficient, f.is_healthy(coefficient))
            )
        cells = tuple(
            ClassCell(row["abc"], row["xyz"], int(row["clients"]), _decimal(row["revenue"]))
            for row in sorted(matrix_rows, key=lambda r: (r["abc"], r["xyz"] or ""))
        )
        return RepeatSalesReport(
            start=start,
            end=end,
            activity_window_days=self._window.days,
            nps=nps_summary,
            clients_at_start=int(c["active_start"]),
            clients_at_end=int(c["active_end"]),
            new_clients=int(c["new"]),
            lost_clients=int(c["lost"]),
            retention_rate=f.retention_rate(
                int(c["active_start"]), int(c["active_end"]), int(c["new"])
            ),
            churn_rate=f.churn_rate(int(c["active_start"]), int(c["lost"])),
            buyers=buyers,
            repeat_buyers=int(c["repeat_buyers"]),
            repeat_purchase_rate=f.repeat_purchase_rate(buyers, int(c["repeat_buyers"])),
            orders=orders,
            revenue=revenue,
            average_order_value=f.average_order_value(revenue, orders),
            purchase_frequency=f.purchase_frequency(orders, buyers),
            clients_to_date=int(c["clients_to_date"]),
            ltv=f.lifetime_value(_decimal(c["revenue_to_date"]), int(c["clients_to_date"])),
            months=months,
            abc_xyz=cells,
            tenure=tuple(tenure),
        )
