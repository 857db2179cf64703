"""The timeline as a feed for parts that follow it in id order (the CRM push): the history
store's side of :class:`povtor.ports.TimelineFeed`, so followers never read its tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import String, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.history.convert import event_from_row, nps_from_row, task_from_row
from crm_sync.history.tables import EventRow, NpsResponseRow, TaskRow
from povtor.domain import TimelineEvent
from povtor.ports import EventRecords, TimelinePage

RANGES_PER_QUERY = 300  # OR-ed BETWEENs per statement: a few hundred keep the plan simple


def referenced_id(ref: str | None, prefix: str) -> int | None:
    """``"task:12"`` -> 12 for prefix "task"; None when the ref is another kind or malformed."""
    if not ref or not ref.startswith(prefix + ":"):
        return None
    tail = ref[len(prefix) + 1 :]
    return int(tail) if tail.isdigit() else None


class SqlTimelineFeed:
    """Implements :class:`povtor.ports.TimelineFeed` over the history store's tables."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def newest_id(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.coalesce(func.max(EventRow.id), 0))) or 0)

    async def page_after(self, after: int, limit: int) -> TimelinePage:
        query = select(EventRow).where(EventRow.id > after).order_by(EventRow.id).limit(limit)
        async with self._sessions() as session:
            events = [event_from_row(r) for r in await session.scalars(query)]
            snapshot = None
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                text_form = await session.scalar(select(func.pg_current_snapshot().cast(String)))
                snapshot = str(text_form)
        return TimelinePage(events, snapshot)

    async def in_ranges(self, ranges: Sequence[tuple[int, int]]) -> Sequence[TimelineEvent]:
        found: list[TimelineEvent] = []
        async with self._sessions() as session:
            for start in range(0, len(ranges), RANGES_PER_QUERY):
                chunk = ranges[start : start + RANGES_PER_QUERY]
                query = (
                    select(EventRow)
                    .where(or_(*(EventRow.id.between(lo, hi) for lo, hi in chunk)))
                    .order_by(EventRow.id)
                )
                found += [event_from_row(r) for r in await session.scalars(query)]
        found.sort(key=lambda e: e.id)
        return found

    async def with_records(self, event_ids: Sequence[int]) -> Mapping[int, EventRecords]:
        """Three queries for the whole batch: the events, their NPS answers, their tasks."""
        async with self._sessions() as session:
            query = select(EventRow).where(EventRow.id.in_(list(set(event_ids))))
            events = [event_from_row(r) for r in await session.scalars(query)]
            nps_ids = {n for e in events if (n := referenced_id(e.ref, "nps")) is not None}
            task_ids = {t for e in events if (t := referenced_id(e.ref, "task")) is not None}
            nps = {}
            if nps_ids:
                rows = await session.scalars(
                    select(NpsResponseRow).where(NpsResponseRow.id.in_(nps_ids))
                )
                nps = {r.id: nps_from_row(r) for r in rows}
            tasks = {}
            if task_ids:
                rows_t = await session.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids)))
                tasks = {r.id: task_from_row(r) for r in rows_t}
        found: dict[int, EventRecords] = {}
        for e in events:
            nps_id, task_id = referenced_id(e.ref, "nps"), referenced_id(e.ref, "task")
            found[e.id] = EventRecords(
                e,
                nps=nps.get(nps_id) if nps_id is not None else None,
                task=tasks.get(task_id) if task_id is not None else None,
            )
        return found
