"""Retention figures and client lists for the dashboard (``povtor.ports.RetentionView``).

The repeat-sales figures are :class:`crm_sync.metrics.reports.SqlReports` itself, in the JSON
shape of ``povtor report --json``, so the browser and the command line always agree; for the
periods the page offers they are the reports stored by the background refresh
(:mod:`crm_sync.metrics.snapshots`). The client
list reads ``client_stats`` (orders, revenue, last order, the last scored NPS answer), one row
per client joined by key.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, bindparam, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_sync.history.client_batch import load_phones
from crm_sync.history.convert import nps_from_row
from crm_sync.history.store import SqlHistoryStore, client_matches
from crm_sync.history.tables import (
    NPS_GROUP_WHERE,
    ClientPhoneRow,
    ClientRow,
    ClientStatsRow,
    ConsentRow,
    EventRow,
    NpsResponseRow,
    TaskRow,
)
from crm_sync.metrics.nps_days import NpsDays
from crm_sync.metrics.period import months_between
from crm_sync.metrics.reports import DEFAULT_ACTIVITY_WINDOW, SqlReports
from crm_sync.metrics.snapshots import ReportSnapshots
from crm_sync.metrics.sql import abc_xyz_members_query
from povtor.db import autocommit_reads, table_of, utcnow
from povtor.domain import (
    NPS_SCORES,
    ChannelKind,
    EventKind,
    NpsGroup,
    NpsResponse,
    ReasonCategory,
    TaskStatus,
)
from povtor.ports import (
    AbcCell,
    ClientFilter,
    ClientSummary,
    ReasonCount,
    ReportSnapshot,
    TaskCounts,
)

CENTS = Decimal("0.01")
MAX_PAGE = 5000  # the most clients one call returns (an export reads several pages)
SEGMENTS = ("none", "new", "repeat", "lost")


class SqlRetentionView:
    """``RetentionView`` over the history store's tables (reads only)."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: SqlHistoryStore,
        timezone: str = "Europe/Moscow",
        activity_window: timedelta = DEFAULT_ACTIVITY_WINDOW,
    ) -> None:
        self._engine = autocommit_reads(engine)  # every statement here only reads
        self._store = store
        self._tz = timezone
        self._window = activity_window
        self._reports = SqlReports(engine, timezone, activity_window)
        # the stored reports are only read here (``latest``, their cells): no transaction
        self._snapshots = ReportSnapshots(self._engine, timezone, activity_window)
        self._days = NpsDays(engine, timezone)

    async def repeat_sales(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        return (await self._reports.report(start, end)).as_json()

    async def report_snapshot(self, period: str) -> ReportSnapshot | None:
        return await self._snapshots.latest(period)

    async def client_count(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(ClientRow)) or 0)

    async def list_clients(
        self, where: ClientFilter, *, after_id: int | None = None, limit: int = 50
    ) -> Sequence[ClientSummary]:
        as_of = where.as_of or utcnow()
        params: dict[str, Any] = {
            "lost_before": as_of - self._window,
            "limit": min(limit, MAX_PAGE),
        }
        if after_id is not None:
            params["after_id"] = after_id
        if where.last_order_min_days is not None:
            params["ordered_before"] = as_of - timedelta(where.last_order_min_days)
        if where.last_order_max_days is not None:
            params["ordered_since"] = as_of - timedelta(where.last_order_max_days)
        if where.consent is not None:
            params["consent"] = where.consent.value
        postgres = self._engine.dialect.name == "postgresql"
        shape = _ListShape(
            frozenset(params),
            where.segment if where.segment in SEGMENTS else None,
            where.nps_group,
            where.channel,
            where.opted_out,
            postgres,
        )
        stmt = _client_list_statement(shape)
        if where.text.strip():  # searches and cells add their own conditions, built each time
            suffix_only = where.phone_suffix_only
            matches = client_matches(
                where.text.strip(), case_folding=postgres, phone_suffix_only=suffix_only
            )
            stmt = stmt.where(or_(*matches))
        if where.cell is not None:
            stmt = stmt.where(ClientRow.id.in_(await self._cell_members(where.cell)))
        # the list's own columns and the page's phones, not whole clients: a page is read on
        # every request, and consents (the rest of a client) are for the card
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(stmt, params))
            if postgres:  # read in the same statement, as an array per client
                phones = {r.id: tuple(r.phones or ()) for r in rows}
            else:
                phones = await load_phones(conn, [r.id for r in rows])
        return [
            ClientSummary(
                id=r.id,
                external_id=r.external_id,
                name=r.name,
                segment=r.segment,
                phones=phones.get(r.id, ()),
                telegram_linked=bool(r.telegram_linked),
                telegram_reachable=bool(r.telegram_reachable),
                opted_out=bool(r.opted_out),
                orders=int(r.orders_count or 0),
                revenue=Decimal(str(r.revenue or 0)).quantize(CENTS),
                last_order_at=r.last_order_at,
                last_score=r.last_nps_score,
                last_answered_at=r.last_nps_at,
            )
            for r in rows
        ]

    async def _cell_members(self, cell: AbcCell) -> Any:
        """A stored period's cell from the classes stored with its report; other dates by
        classifying the period's buyers now (the page offers those on small bases only)."""
        months = months_between(cell.start, cell.end, self._tz)
        xyz = cell.xyz if months >= 3 else None
        stored = await self._snapshots.stored_period(cell.start, cell.end)
        if stored is not None:
            return self._snapshots.cell_members(stored, cell.abc, xyz).scalar_subquery()
        offset = ZoneInfo(self._tz).utcoffset(cell.start.replace(tzinfo=None))
        offset_s = int(offset.total_seconds()) if offset is not None else 0
        return abc_xyz_members_query(
            cell.start,
            cell.end,
            months,
            self._engine.dialect.name,
            self._tz,
            offset_s,
            cell.abc,
            xyz,
        ).scalar_subquery()

    async def nps_counts(self, bounds: Sequence[datetime]) -> Sequence[Mapping[NpsGroup, int]]:
        """The stored days (``crm_sync.metrics.nps_days``) plus the answers after them; when
        nothing is stored or a bound is not a midnight, every answer counted here."""
        pairs = list(itertools.pairwise(bounds))
        if not pairs:
            return []
        async with self._engine.connect() as conn:
            through = await self._days.through(conn)
            spans = [] if through is None else [self._days.days_of(*p, through) for p in pairs]
            if through is None or None in spans:
                return await _counted_nps(conn, bounds)
            live = await _counted_nps(conn, [max(b, through) for b in bounds])
            days = [span for span in spans if span is not None]
            stored = await self._days.by_day(
                conn, min(first for first, _ in days), max(last for _, last in days)
            )
        result = []
        for counts, (first, last) in zip(live, days, strict=True):
            totals = dict(counts)
            for (day, grp), count in stored.items():
                if first <= day <= last:
                    totals[NpsGroup(grp)] += count
            result.append(totals)
        return result

    async def figures_through(self) -> datetime | None:
        async with self._engine.connect() as conn:
            return await self._days.through(conn)

    async def reasons(self, start: datetime, end: datetime) -> Sequence[ReasonCount]:
        """By group and reason: the stored days plus the answers after them (or every answer
        counted here, as ``nps_counts``)."""
        async with self._engine.connect() as conn:
            through = await self._days.through(conn)
            span = None if through is None else self._days.days_of(start, end, through)
            if through is None or span is None:
                rows = await _counted_reasons(conn, start, end)
            else:
                rows = await _counted_reasons(conn, max(start, through), max(end, through))
                rows += await self._days.by_reason(conn, *span)
        known = {c.value for c in ReasonCategory}
        counts: dict[tuple[NpsGroup, ReasonCategory | None], int] = {}
        for grp, raw, answers in rows:
            category = ReasonCategory(raw) if raw in known else None
            key = (NpsGroup(grp), category)
            counts[key] = counts.get(key, 0) + answers
        return [ReasonCount(g, cat, k) for (g, cat), k in counts.items()]

    async def outreach(self, start: datetime, end: datetime) -> Mapping[str, int]:
        async with self._engine.connect() as conn:
            rows = list((await conn.execute(_OUTREACH, {"start": start, "end": end})).mappings())
        result = {"messages": 0, "calls": 0, "answers": 0}
        for r in rows:
            count = int(r["n"])
            if r["kind"] == EventKind.MESSAGE_OUT.value:
                result["messages"] += count
            elif r["kind"] == EventKind.NPS_ANSWER.value:
                result["answers"] += count
            else:
                result["calls"] += count
                key = f"call_{r['outcome'] or 'unknown'}"
                result[key] = result.get(key, 0) + count
        return result

    async def nps_answer(self, answer_id: int) -> NpsResponse | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_ANSWER, {"answer_id": answer_id})).first()
        return None if row is None else nps_from_row(cast(NpsResponseRow, row))

    async def task_counts(self, now: datetime) -> TaskCounts:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_TASK_COUNTS, {"now": now})).one()
        return TaskCounts(open=int(row[0]), in_progress=int(row[1]), overdue=int(row[2]))


@dataclass(frozen=True)
class _ListShape:
    """What makes one client list statement differ from another; the values are bound."""

    bound: frozenset[str]  # the parameters given (after, order ages, consent)
    segment: str | None
    nps_group: NpsGroup | None
    channel: ChannelKind | None
    opted_out: bool | None
    phones_inline: bool  # PostgreSQL: the phones as an array column (one statement, not two)


@cache
def _client_list_statement(shape: _ListShape) -> Any:
    """The client list's rows under this shape of filters, built once per shape (building a
    statement costs more CPU than running it; the list is read on every request)."""
    c, cs = ClientRow, ClientStatsRow
    segment = case(
        (cs.last_order_at.is_(None), "none"),
        (cs.last_order_at < bindparam("lost_before"), "lost"),
        (cs.orders_count >= 2, "repeat"),
        else_="new",
    )
    joined: Any = cs.client_id == c.id
    if "after_id" in shape.bound:
        # the page's bound on the stats' key too: else PostgreSQL merges with client_stats
        # read from its first row (130 ms for a page in the middle of 1M clients; 0.2 ms)
        joined = and_(joined, cs.client_id > bindparam("after_id"))
    stmt = (
        select(
            c.id,
            c.external_id,
            c.name,
            c.telegram_chat_id.is_not(None).label("telegram_linked"),
            c.telegram_reachable,
            c.opted_out_at.is_not(None).label("opted_out"),
            segment.label("segment"),
            cs.orders_count,
            cs.revenue,
            cs.last_order_at,
            cs.last_nps_score,
            cs.last_nps_at,
        )
        .select_from(c)
        .outerjoin(cs, joined)
    )
    if shape.phones_inline:  # the page's phones, primary first, without a second statement
        p = ClientPhoneRow
        phones = (
            select(func.array_agg(aggregate_order_by(p.phone, p.position, p.id)))
            .where(p.client_id == c.id)
            .scalar_subquery()
        )
        stmt = stmt.add_columns(phones.label("phones"))
    if "after_id" in shape.bound:
        stmt = stmt.where(c.id > bindparam("after_id"))
    if shape.segment is not None:
        stmt = stmt.where(segment == shape.segment)
    if shape.nps_group is not None:
        stmt = stmt.where(NPS_GROUP_WHERE[shape.nps_group])  # its partial index's words
    if "ordered_before" in shape.bound:
        stmt = stmt.where(cs.last_order_at <= bindparam("ordered_before"))
    if "ordered_since" in shape.bound:
        stmt = stmt.where(cs.last_order_at >= bindparam("ordered_since"))
    if shape.channel is ChannelKind.TELEGRAM:
        stmt = stmt.where(c.telegram_chat_id.is_not(None), c.telegram_reachable.is_(True))
    elif shape.channel is ChannelKind.CALL:
        stmt = stmt.where(exists().where(ClientPhoneRow.client_id == c.id))
    if "consent" in shape.bound:
        stmt = stmt.where(
            exists().where(
                ConsentRow.client_id == c.id,
                ConsentRow.channel == bindparam("consent"),
                ConsentRow.granted.is_(True),
            )
        )
    if shape.opted_out is not None:
        opted = c.opted_out_at.is_not(None)
        stmt = stmt.where(opted if shape.opted_out else c.opted_out_at.is_(None))
    return stmt.order_by(c.id).limit(bindparam("limit", type_=Integer))


# The overview's and the answer page's reads, built once: building a statement costs more
# CPU than asyncpg running it, and these run on every request.
def _outreach_statement() -> Any:
    e = EventRow
    outcome = EventRow.data["outcome"].as_string()
    kinds = (EventKind.MESSAGE_OUT.value, EventKind.CALL.value, EventKind.NPS_ANSWER.value)
    return (
        select(e.kind, outcome.label("outcome"), func.count().label("n"))
        .where(e.kind.in_(kinds), e.at >= bindparam("start"), e.at < bindparam("end"))
        .group_by(e.kind, outcome)
    )


def _task_counts_statement() -> Any:
    t = TaskRow
    active = (TaskStatus.OPEN.value, TaskStatus.IN_PROGRESS.value)
    return select(
        func.count().filter(t.status == TaskStatus.OPEN.value),
        func.count().filter(t.status == TaskStatus.IN_PROGRESS.value),
        func.count().filter(t.due_at < bindparam("now")),
    ).where(t.status.in_(active))


_OUTREACH = _outreach_statement()
_TASK_COUNTS = _task_counts_statement()
_ANSWER = select(*table_of(NpsResponseRow).c).where(NpsResponseRow.id == bindparam("answer_id"))


async def _counted_nps(
    conn: AsyncConnection, bounds: Sequence[datetime]
) -> list[dict[NpsGroup, int]]:
    """Filtered counts side by side over one range scan of ``ix_nps_responses_answered_at``
    (the same score bounds as the report's NPS)."""
    n = NpsResponseRow
    pairs = list(itertools.pairwise(bounds))
    columns = [
        func.count().filter(
            n.answered_at >= low, n.answered_at < high, n.score.between(s_low, s_high)
        )
        for low, high in pairs
        for s_low, s_high in NPS_SCORES.values()
    ]
    stmt = select(*columns).where(
        n.answered_at >= bounds[0], n.answered_at < bounds[-1], n.score.is_not(None)
    )
    row = list((await conn.execute(stmt)).one())
    groups = list(NPS_SCORES)
    return [
        {g: int(row[i * len(groups) + k]) for k, g in enumerate(groups)} for i in range(len(pairs))
    ]


async def _counted_reasons(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[tuple[str, str | None, int]]:
    if start >= end:
        return []
    n = NpsResponseRow
    group = case(*((n.score.between(low, high), g.value) for g, (low, high) in NPS_SCORES.items()))
    stmt = (
        select(group.label("grp"), n.reason_category, func.count().label("answers"))
        .where(n.answered_at >= start, n.answered_at < end, n.score.is_not(None))
        .group_by(group, n.reason_category)
    )
    return [(grp, category, int(count)) for grp, category, count in await conn.execute(stmt)]
