"""Metric formulas: tables of cases worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from crm_sync.metrics import formulas as f
from crm_sync.metrics.period import months_between, period_from_dates, years_before
from povtor.errors import InvalidInput


@pytest.mark.parametrize(
    ("promoters", "detractors", "responses", "expected"),
    [(5, 2, 10, 30.0), (0, 10, 10, -100.0), (10, 0, 10, 100.0), (1, 1, 3, 0.0), (0, 0, 0, None)],
)
def test_nps_score(
    promoters: int, detractors: int, responses: int, expected: float | None
) -> None:
    assert f.nps_score(promoters, detractors, responses) == expected


@pytest.mark.parametrize(
    ("start", "end", "new", "expected"),
    [(100, 110, 20, 0.9), (100, 100, 0, 1.0), (50, 60, 60, 0.0), (0, 10, 10, None)],
)
def test_retention_rate_is_end_minus_new_over_start(
    start: int, end: int, new: int, expected: float | None
) -> None:
    assert f.retention_rate(start, end, new) == expected


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        (f.churn_rate, (200, 30), 0.15),
        (f.churn_rate, (0, 0), None),
        (f.repeat_purchase_rate, (40, 10), 0.25),
        (f.purchase_frequency, (90, 60), 1.5),
        (f.average_order_value, (Decimal("1000"), 3), Decimal("333.33")),
        (f.average_order_value, (Decimal("0"), 0), None),
        (f.lifetime_value, (Decimal("12345.67"), 10), Decimal("1234.57")),
        (f.lifetime_value, (Decimal("0"), 0), None),
    ],
)
def test_ratios(function: object, args: tuple[object, ...], expected: object) -> None:
    assert function(*args) == expected  # type: ignore[operator]


@pytest.mark.parametrize(
    ("before", "total", "expected"),
    [
        (0, 100, f.AbcClass.A),  # the largest client is always A
        (79.9, 100, f.AbcClass.A),
        (80, 100, f.AbcClass.B),
        (94.9, 100, f.AbcClass.B),
        (95, 100, f.AbcClass.C),
    ],
)
def test_abc_split_80_15_5(before: float, total: float, expected: f.AbcClass) -> None:
    assert f.abc_class(before, total) == expected


@pytest.mark.parametrize(
    ("monthly", "months", "expected"),
    [
        ([100, 100, 100, 100], 4, f.XyzClass.X),  # CV 0
        ([95, 105, 100, 100], 4, f.XyzClass.X),  # CV ~3.5%
        ([80, 120, 100, 100], 4, f.XyzClass.Y),  # CV ~14%
        ([100, 0, 100, 100], 4, f.XyzClass.Z),  # a silent month: CV ~58%
        ([400], 4, f.XyzClass.Z),  # one purchase in four months
        ([100, 100], 2, None),  # too few months to judge
        ([], 6, None),
    ],
)
def test_xyz_by_coefficient_of_variation(
    monthly: list[float], months: int, expected: f.XyzClass | None
) -> None:
    assert f.xyz_class(monthly, months) == expected


def test_xyz_thresholds_are_inclusive_at_10_and_25_percent() -> None:
    # mean 100, population sd exactly 10 / 25 over 2 points, repeated to 4 months
    assert f.xyz_class([90, 110, 90, 110], 4) == f.XyzClass.X
    assert f.xyz_class([75, 125, 75, 125], 4) == f.XyzClass.Y
    assert f.xyz_class([74, 126, 74, 126], 4) == f.XyzClass.Z


@pytest.mark.parametrize(
    ("coefficient", "healthy"), [(0.95, True), (0.9, True), (0.89, False), (None, None)]
)
def test_healthy_repeat_coefficient(coefficient: float | None, healthy: bool | None) -> None:
    assert f.is_healthy(coefficient) is healthy


def test_period_is_local_days_in_utc() -> None:
    start, end = period_from_dates(date(2024, 1, 1), date(2024, 1, 31), "Europe/Moscow")
    assert start == datetime(2023, 12, 31, 21, tzinfo=UTC)
    assert end == datetime(2024, 1, 31, 21, tzinfo=UTC)
    assert months_between(start, end, "Europe/Moscow") == 1
    start, end = period_from_dates(None, None, "Asia/Vladivostok", today=date(2024, 12, 31))
    assert months_between(start, end, "Asia/Vladivostok") == 12
    with pytest.raises(InvalidInput, match="after"):
        period_from_dates(date(2024, 2, 1), date(2024, 1, 1), "Europe/Moscow")


def test_years_before_a_leap_day() -> None:
    assert years_before(datetime(2024, 2, 29, tzinfo=UTC), 1) == datetime(2023, 2, 28, tzinfo=UTC)
