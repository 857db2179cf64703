"""The repeat-sales report computed by SQLite and PostgreSQL over a business worked out by hand.

Period 2024 (Moscow), activity window 365 days. Clients:
A since 2013, buys 1000 every month of 2024 (10+ years, X);  B since 2021, last order 2023-03
(lost);  C new in 2024, one order of 500;  D first deal 2023-06, one order of 3000 in 2024 (Z);
E since 2015, silent since 2016.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from crm_sync.metrics.period import months_between, period_from_dates
from crm_sync.metrics.reports import SqlReports
from crm_sync.metrics.sql import abc_xyz_query
from povtor.domain import ChannelKind, EventKind
from povtor.ports import NewEvent, NewNpsResponse, Reports

PERIOD = period_from_dates(date(2024, 1, 1), date(2024, 12, 31), "Europe/Moscow")


def _at(y: int, m: int, d: int = 15) -> datetime:
    return datetime(y, m, d, 9, 0, tzinfo=UTC)


async def _business(store: SqlHistoryStore) -> dict[str, int]:
    orders: dict[str, list[tuple[datetime, str]]] = {
        "A": [(_at(2013, 6), "1000"), (_at(2023, 6), "1000")]
        + [(_at(2024, m), "1000") for m in range(1, 13)],
        "B": [(_at(2021, 5), "700"), (_at(2023, 3), "700")],
        "C": [(_at(2024, 3, 10), "500")],
        "D": [(_at(2023, 6, 1), "1000"), (_at(2024, 5), "3000")],
        "E": [(_at(2015, 1, 1), "200"), (_at(2016, 1), "200")],
    }
    ids = {}
    for name, history in orders.items():
        client = await store.create_client(ClientInput(external_id=name, name=name))
        ids[name] = client.id
        for i, (at, amount) in enumerate(history):
            await store.add_order(
                OrderInput(f"{name}-{i}", name, placed_at=at, amount=Decimal(amount))
            )
    return ids


async def test_report_figures_match_the_hand_computed_business(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    await _business(store)
    report = await SqlReports(engine, "Europe/Moscow").report(*PERIOD)

    assert (report.clients_at_start, report.clients_at_end, report.new_clients) == (3, 3, 1)
    assert report.retention_rate == 0.6667
    assert (report.lost_clients, report.churn_rate) == (1, 0.3333)
    assert (report.buyers, report.repeat_buyers, report.repeat_purchase_rate) == (3, 2, 0.6667)
    assert (report.orders, report.revenue) == (14, Decimal("15500.00"))
    assert report.average_order_value == Decimal("1107.14")
    assert report.purchase_frequency == 4.6667
    assert (report.clients_to_date, report.ltv) == (5, Decimal("4060.00"))
    assert report.months == 12
    json = report.as_json()
    assert json["abc"] == {
        "A": {"clients": 2, "revenue": "15000.00"},
        "B": {"clients": 0, "revenue": "0.00"},
        "C": {"clients": 1, "revenue": "500.00"},
    }
    assert json["abc_xyz"] == {"AX": 1, "AZ": 1, "CZ": 1}
    assert json["xyz"] == {"X": 1, "Y": 0, "Z": 2}
    tenure = {t["cohort"]: (t["clients"], t["bought_again"], t["healthy"]) for t in json["tenure"]}
    assert tenure == {
        "first_deal": (1, 1, True),
        "1y": (0, 0, None),
        "2y": (1, 0, False),
        "5y": (1, 0, False),
        "10y": (1, 1, True),
    }


async def test_short_period_has_no_xyz_but_keeps_abc(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    await _business(store)
    start, end = period_from_dates(date(2024, 5, 1), date(2024, 6, 30), "Europe/Moscow")
    report = await SqlReports(engine).report(start, end)
    assert report.xyz_totals() is None
    assert report.as_json()["abc_xyz"] == {"A": 2}  # D 3000; A 2000 starts below 80% of 5000


async def test_nps_counts_groups_and_surveys_asked(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    ids = await _business(store)
    answers = [("A", 10), ("C", 9), ("D", 8), ("B", 3), ("A", None)]
    for i, (name, score) in enumerate(answers):
        await store.record_nps(
            NewNpsResponse(ids[name], score, ChannelKind.TELEGRAM, answered_at=_at(2024, 6, 1 + i))
        )
    await store.record_nps(
        NewNpsResponse(ids["E"], 10, ChannelKind.CALL, answered_at=_at(2023, 6))
    )
    for name, purpose in [("A", "nps"), ("A", "nps"), ("C", "nps"), ("D", "reorder")]:
        await store.append_event(
            NewEvent(
                ids[name],
                EventKind.MESSAGE_OUT,
                "Оцените нас",
                at=_at(2024, 5, 30),
                data={"purpose": purpose},
            )
        )
    reports: Reports = SqlReports(engine)

    summary = await reports.nps(*PERIOD)

    assert (summary.promoters, summary.passives, summary.detractors) == (2, 1, 1)
    assert summary.responses == 4
    assert summary.nps == 25.0
    assert summary.asked == 5  # 3 surveys sent + answers of D and B, who had none recorded
    assert summary.response_rate == 0.8


@pytest.mark.parametrize("months", [1, 3])
async def test_empty_store_reports_nothing_without_dividing_by_zero(
    engine: AsyncEngine, months: int
) -> None:
    start, end = period_from_dates(date(2024, 1, 1), date(2024, months, 28), "Europe/Moscow")
    report = await SqlReports(engine).report(start, end)
    assert report.retention_rate is None
    assert report.average_order_value is None
    assert report.nps.nps is None
    assert report.abc_xyz == ()


async def test_orders_after_the_period_do_not_count_in_it(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    await _business(store)  # A, C and D order again in 2024, after the 2023 period
    start, end = period_from_dates(date(2023, 1, 1), date(2023, 12, 31), "Europe/Moscow")
    report = await SqlReports(engine, "Europe/Moscow").report(start, end)

    assert (report.clients_to_date, report.ltv) == (4, Decimal("1200.00"))
    assert (report.clients_at_start, report.clients_at_end, report.new_clients) == (0, 3, 1)
    assert (report.lost_clients, report.retention_rate) == (0, None)
    assert (report.buyers, report.repeat_buyers) == (3, 2)  # D had one order by then
    assert (report.orders, report.revenue) == (3, Decimal("2700.00"))
    tenure = {t.name: (t.clients, t.bought_again) for t in report.tenure}
    assert tenure == {
        "first_deal": (0, 0),
        "1y": (1, 1),
        "2y": (0, 0),
        "5y": (2, 1),
        "10y": (0, 0),
    }


@pytest.mark.parametrize(
    ("first", "last", "classes"),
    [
        (date(2024, 1, 1), date(2024, 12, 31), {"X", "Z"}),
        (date(2013, 1, 1), date(2024, 12, 31), {"Z"}),
    ],
)
async def test_monthly_sums_side_by_side_match_grouping_by_month(
    engine: AsyncEngine, store: SqlHistoryStore, first: date, last: date, classes: set[str]
) -> None:
    await _business(store)
    start, end = period_from_dates(first, last, "Europe/Moscow")
    months = months_between(start, end, "Europe/Moscow")
    args = (start, end, months, engine.dialect.name, "Europe/Moscow", 3 * 3600)

    async with engine.connect() as conn:
        flat = (await conn.execute(abc_xyz_query(*args, flat_months=months))).all()
        grouped = (await conn.execute(abc_xyz_query(*args, flat_months=0))).all()

    def rounded(rows: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((r[0], r[1], r[2], round(float(r[3]), 2)) for r in rows)

    assert rounded(flat) == rounded(grouped)
    assert {r[1] for r in flat} == classes
