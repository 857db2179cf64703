"""Scored NPS answers per day, group and reason, stored by the background refresh (after every
planning pass) so that the overview's trend and the reasons page add up a few hundred stored
days instead of counting a year of answers per request.

Stored on PostgreSQL only (``AT TIME ZONE`` gives the business's day of an answer exactly,
daylight saving included); on SQLite, the small bases, every count is made on request. The
stored days hold the answers up to ``through`` (the refresh's start); a reader adds the answers
after it, counted on request from the index on ``answered_at``, so the figures are as current
as the answers themselves. A period whose bounds are not midnights of the business's time zone
cannot be cut into stored days: it is counted on request whole.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_sync.history.tables import NpsResponseRow
from crm_sync.metrics.tables import NpsDayRow, StoredFiguresRow
from povtor.db import dialect_insert, table_of
from povtor.domain import NPS_SCORES

NAME = "nps_days"


class NpsDays:
    def __init__(self, engine: AsyncEngine, timezone: str = "Europe/Moscow") -> None:
        self._engine = engine
        self._tz = ZoneInfo(timezone)
        self._tz_name = timezone

    @property
    def enabled(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    async def store(self, through: datetime) -> None:
        """Count every scored answer before ``through`` by day, group and reason, replacing
        what was stored, in one transaction."""
        if not self.enabled:
            return
        n = NpsResponseRow
        day = cast(func.timezone(self._tz_name, n.answered_at), Date)
        grp = case(*((n.score.between(lo, hi), g.value) for g, (lo, hi) in NPS_SCORES.items()))
        category = func.coalesce(n.reason_category, literal(""))
        counted = (
            select(day, grp, category, func.count())
            .where(n.score.is_not(None), n.answered_at < through)
            .group_by(day, grp, category)
        )
        days = table_of(NpsDayRow)
        async with self._engine.begin() as conn:
            await conn.execute(delete(days))
            await conn.execute(
                insert(days).from_select(["day", "grp", "category", "answers"], counted)
            )
            stamp = dialect_insert(conn, table_of(StoredFiguresRow)).values(
                name=NAME, through=through
            )
            await conn.execute(
                stamp.on_conflict_do_update(index_elements=["name"], set_={"through": through})
            )

    async def through(self, conn: AsyncConnection) -> datetime | None:
        """Up to when the stored days counted the answers; None when nothing is stored."""
        if not self.enabled:
            return None
        s = StoredFiguresRow
        found: datetime | None = await conn.scalar(select(s.through).where(s.name == NAME))
        return found

    def days_of(
        self, start: datetime, end: datetime, through: datetime
    ) -> tuple[date, date] | None:
        """The stored days that answer [start, end) up to ``through`` (first > last: none),
        the rest counted from ``through`` on; None when the period cannot be cut into them."""
        if start >= through:
            return date.max, date.min
        if not self._midnight(start):
            return None
        first = start.astimezone(self._tz).date()
        if end > through:  # the stored day of ``through`` holds it up to that moment
            return first, through.astimezone(self._tz).date()
        if not self._midnight(end):
            return None
        return first, end.astimezone(self._tz).date() - timedelta(days=1)

    async def by_day(
        self, conn: AsyncConnection, first: date, last: date
    ) -> dict[tuple[date, str], int]:
        """Stored answers per (day, group) in [first, last]."""
        d = NpsDayRow
        rows = await conn.execute(
            select(d.day, d.grp, func.sum(d.answers))
            .where(d.day >= first, d.day <= last)
            .group_by(d.day, d.grp)
        )
        return {(day, grp): int(count) for day, grp, count in rows}

    async def by_reason(
        self, conn: AsyncConnection, first: date, last: date
    ) -> list[tuple[str, str, int]]:
        """Stored answers per (group, category) over [first, last]."""
        d = NpsDayRow
        rows = await conn.execute(
            select(d.grp, d.category, func.sum(d.answers))
            .where(d.day >= first, d.day <= last)
            .group_by(d.grp, d.category)
        )
        return [(grp, category, int(count)) for grp, category, count in rows]

    def _midnight(self, moment: datetime) -> bool:
        return moment.astimezone(self._tz).time() == time()
