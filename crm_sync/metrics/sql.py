"""The report's SQL: aggregates and window functions that run the same on SQLite and PostgreSQL.

Three statements, each one pass over the rows it needs: per-client activity from the start of the
period minus the activity window, with the per-client summary ``client_stats`` for what reaches
back further (retention, churn, repeat rate, LTV, tenure cohorts); per-client monthly revenue in
the period ranked by a window (ABC x XYZ); the NPS answers and surveys of the period.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
)

from crm_sync.history.tables import ClientStatsRow, EventRow, NpsResponseRow, OrderRow
from crm_sync.metrics.formulas import (
    ABC_A_SHARE,
    ABC_B_SHARE,
    TENURE_COHORTS,
    XYZ_X_MAX_CV,
    XYZ_Y_MAX_CV,
)
from crm_sync.metrics.period import years_before
from povtor.db import table_of
from povtor.domain import NPS_SCORES, EventKind, NpsGroup

orders = table_of(OrderRow)
stats = table_of(ClientStatsRow)
events = table_of(EventRow)
nps = table_of(NpsResponseRow)
FLAT_MONTHS = 36
OUTBOUND_KINDS = (EventKind.MESSAGE_OUT.value, EventKind.CALL.value)


_GROUP_LABELS = (
    (NpsGroup.PROMOTER, "promoters"),
    (NpsGroup.PASSIVE, "passives"),
    (NpsGroup.DETRACTOR, "detractors"),
)


def _in_group(score: Any, group: NpsGroup) -> Any:
    low, high = NPS_SCORES[group]
    return and_(score >= low, score <= high)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def clients_query(start: datetime, end: datetime, window: timedelta) -> Select[Any]:
    """One row: activity at start/end, new, churned, buyers, repeat buyers, orders, revenue,
    LTV parts and, per tenure cohort, its size and how many of it bought in the period.

    First order, order count and revenue to date come from ``client_stats`` (minus the orders
    placed at or after ``end``, usually none or a few); only the orders from ``start - window``
    on are grouped by client, and only for their first and last time (activity, purchase).
    """
    o = orders.c
    cs = stats.c
    amount = cast(o.amount, Float)  # float sums are several times faster than numeric ones
    # First and last order since start - window: activity at start (first < start), a purchase
    # in the period (last >= start), activity at end (last >= end - window).
    recent = (
        select(
            o.client_id,
            func.min(o.placed_at).label("first_recent"),
            func.max(o.placed_at).label("last_recent"),
        )
        .where(o.placed_at >= start - window, o.placed_at < end)
        .group_by(o.client_id)
        .subquery("recent")
    )
    in_period = and_(o.placed_at >= start, o.placed_at < end)
    period_orders = select(func.count()).where(in_period).scalar_subquery()
    period_revenue = select(func.sum(amount)).where(in_period).scalar_subquery()
    later = (
        select(
            o.client_id,
            func.count().label("n_later"),
            func.sum(amount).label("rev_later"),
        )
        .where(o.placed_at >= end)
        .group_by(o.client_id)
        .subquery("later")
    )
    r, lt = recent.c, later.c
    per_client = (
        select(
            cs.client_id,
            cs.first_order_at.label("first_at"),
            (cs.orders_count - func.coalesce(lt.n_later, 0)).label("n_all"),
            (cast(cs.revenue, Float) - func.coalesce(lt.rev_later, 0.0)).label("rev_all"),
            _flag(r.last_recent >= start).label("bought"),
            _flag(r.first_recent < start).label("active_start"),
            _flag(r.last_recent >= end - window).label("active_end"),
        )
        .select_from(stats)
        .outerjoin(recent, r.client_id == cs.client_id)
        .outerjoin(later, lt.client_id == cs.client_id)
        .where(cs.first_order_at < end)
        .subquery("per_client")
    )
    pc = per_client.c
    bought = pc.bought == 1
    columns: list[Any] = [
        func.count().label("clients_to_date"),
        func.coalesce(func.sum(pc.rev_all), 0).label("revenue_to_date"),
        func.coalesce(func.sum(pc.active_start), 0).label("active_start"),
        func.coalesce(func.sum(pc.active_end), 0).label("active_end"),
        func.coalesce(func.sum(_flag(pc.first_at >= start)), 0).label("new"),
        func.coalesce(func.sum(_flag(and_(pc.active_start == 1, pc.active_end == 0))), 0).label(
            "lost"
        ),
        func.coalesce(func.sum(_flag(bought)), 0).label("buyers"),
        func.coalesce(func.sum(_flag(and_(bought, pc.n_all >= 2))), 0).label("repeat_buyers"),
        func.coalesce(period_orders, 0).label("orders"),
        func.coalesce(period_revenue, 0).label("revenue"),
    ]
    bounds = [years_before(start, years) for _, years in TENURE_COHORTS]
    for i, (name, _) in enumerate(TENURE_COHORTS):
        upper = bounds[i]  # first order at or before this instant: at least that tenure
        member = pc.first_at <= upper if i else pc.first_at < start
        if i + 1 < len(bounds):
            member = and_(member, pc.first_at > bounds[i + 1])
        columns.append(func.coalesce(func.sum(_flag(member)), 0).label(f"cohort_{name}"))
        columns.append(
            func.coalesce(func.sum(_flag(and_(member, bought))), 0).label(f"again_{name}")
        )
    return select(*columns).select_from(per_client)


def _month(column: Any, dialect: str, tz_name: str, offset_s: int) -> Any:
    """The local calendar month of a UTC timestamp (SQLite: a fixed offset, no DST in RU)."""
    if dialect == "postgresql":
        return func.date_trunc("month", func.timezone(tz_name, column))
    return func.strftime("%Y-%m", column, f"{offset_s:+d} seconds")


def month_bounds(start: datetime, end: datetime, tz_name: str) -> list[datetime]:
    """UTC instants where the local calendar months of [start, end) begin, plus ``end``."""
    tz = ZoneInfo(tz_name)
    local = start.astimezone(tz)
    bounds = [start]
    year, month = local.year, local.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        moment = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        if moment >= end:
            return [*bounds, end]
        bounds.append(moment)


def abc_xyz_query(
    start: datetime,
    end: datetime,
    months: int,
    dialect: str,
    tz_name: str,
    offset_s: int,
    flat_months: int = FLAT_MONTHS,
) -> Select[Any]:
    """Rows (abc, xyz, clients, revenue): the ABC x XYZ matrix of the period's buyers."""
    r, abc, xyz, keys = _classified(start, end, months, dialect, tz_name, offset_s, flat_months)
    return (
        select(abc, xyz, func.count().label("clients"), func.sum(r.rev).label("revenue"))
        .where(r.rev > 0)
        .group_by(*keys)
    )


def abc_xyz_classes_query(
    start: datetime, end: datetime, months: int, dialect: str, tz_name: str, offset_s: int
) -> Select[Any]:
    """Rows (client_id, abc, xyz): each buyer of the period with the classes of the matrix."""
    r, abc, xyz, _keys = _classified(start, end, months, dialect, tz_name, offset_s, FLAT_MONTHS)
    return select(r.client_id, abc, xyz).where(r.rev > 0)


def abc_xyz_members_query(
    start: datetime,
    end: datetime,
    months: int,
    dialect: str,
    tz_name: str,
    offset_s: int,
    abc_class: str,
    xyz_class: str | None,
) -> Select[Any]:
    """The ids of the period's buyers in one ABC/XYZ cell (the same classes as the matrix)."""
    cell = abc_xyz_classes_query(start, end, months, dialect, tz_name, offset_s).subquery("cell")
    query = select(cell.c.client_id).where(cell.c.abc == abc_class)
    if xyz_class is not None:
        query = query.where(cell.c.xyz == xyz_class)
    return query


def _classified(
    start: datetime,
    end: datetime,
    months: int,
    dialect: str,
    tz_name: str,
    offset_s: int,
    flat_months: int,
) -> tuple[Any, Any, Any, list[Any]]:
    """Each buyer of the period with revenue, ABC and XYZ class expressions.

    Up to ``FLAT_MONTHS`` months, each client's monthly revenues are filtered sums side by side
    (month bounds computed here, local calendar months with their real UTC offsets) in one
    grouping by client: no grouping by client and month first, which makes a group of nearly
    every order.
    """
    o = orders.c
    amount = cast(o.amount, Float)
    period = and_(o.placed_at >= start, o.placed_at < end)
    if months <= flat_months:
        bounds = month_bounds(start, end, tz_name)
        sums = [
            func.sum(amount).filter(and_(o.placed_at >= low, o.placed_at < high))
            for low, high in itertools.pairwise(bounds)
        ]
        squares: Any = literal_column("0.0")
        for column in sums:
            squares = squares + func.coalesce(column * column, 0.0)
        per_client = (
            select(o.client_id, func.sum(amount).label("rev"), squares.label("sq"))
            .where(period)
            .group_by(o.client_id)
            .subquery("per_client")
        )
    else:
        monthly = (
            select(o.client_id, func.sum(amount).label("rev"))
            .where(period)
            .group_by(o.client_id, _month(o.placed_at, dialect, tz_name, offset_s))
            .subquery("monthly")
        )
        per_client = (
            select(
                monthly.c.client_id,
                func.sum(monthly.c.rev).label("rev"),
                func.sum(monthly.c.rev * monthly.c.rev).label("sq"),
            )
            .group_by(monthly.c.client_id)
            .subquery("per_client")
        )
    p = per_client.c
    ranked = select(
        p.client_id,
        p.rev,
        p.sq,
        (func.sum(p.rev).over(order_by=(p.rev.desc(), p.client_id), rows=(None, 0)) - p.rev).label(
            "rev_before"
        ),
        func.sum(p.rev).over().label("total"),
    ).subquery("ranked")
    r = ranked.c
    abc = case(
        (r.rev_before < ABC_A_SHARE * r.total, "A"),
        (r.rev_before < ABC_B_SHARE * r.total, "B"),
        else_="C",
    ).label("abc")
    if months >= 3:
        scaled = r.sq * months
        xyz: Any = case(
            (scaled <= (1 + XYZ_X_MAX_CV**2) * r.rev * r.rev, "X"),
            (scaled <= (1 + XYZ_Y_MAX_CV**2) * r.rev * r.rev, "Y"),
            else_="Z",
        )
        xyz = xyz.label("xyz")
        keys = [abc, xyz]
    else:
        xyz = literal_column("NULL").label("xyz")
        keys = [abc]
    return r, abc, xyz, keys


def nps_query(start: datetime, end: datetime) -> Select[Any]:
    """One row: promoters, passives, detractors, scored responses, surveys asked.

    Asked = outbound messages and calls of the period whose data has purpose "nps", plus NPS
    answers (events) of the period from clients with no such outbound event in the period (an
    answer implies a question even where the channel does not record its survey yet).
    """
    n = nps.c
    scored = select(
        *(
            func.coalesce(func.sum(_flag(_in_group(n.score, group))), 0).label(label)
            for group, label in _GROUP_LABELS
        ),
        func.count(n.score).label("responses"),
    ).where(n.answered_at >= start, n.answered_at < end, n.score.is_not(None))
    e = events.c
    purpose_nps = EventRow.data["purpose"].as_string() == "nps"
    outbound = and_(e.kind.in_(OUTBOUND_KINDS), e.at >= start, e.at < end, purpose_nps)
    # Read once (a CTE used twice is materialised): the surveys and the clients surveyed.
    surveys = select(e.client_id).where(outbound).cte("surveys")
    asked_out = select(func.count()).select_from(surveys).scalar_subquery()
    asked_answers = (
        select(func.count())
        .where(
            e.kind == EventKind.NPS_ANSWER.value,
            e.at >= start,
            e.at < end,
            ~exists().where(surveys.c.client_id == e.client_id),
        )
        .scalar_subquery()
    )
    s = scored.subquery("scored")
    return select(
        s.c.promoters,
        s.c.passives,
        s.c.detractors,
        s.c.responses,
        (asked_out + asked_answers).label("asked"),
    )
