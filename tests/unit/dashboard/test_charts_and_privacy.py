"""Pure parts of the dashboard: the NPS interval, the charts' figures, masking phone numbers in
free text, neutralising formula cells, periods and the reasons' Pareto order."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.charts import Bar, TrendPoint, nps_interval, pareto_chart, trend_chart
from dashboard.export import neutralise
from dashboard.formatting import mask_phones_in_text
from dashboard.periods import month_buckets, parse_period, week_buckets
from dashboard.reason_views import pareto_bars

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("p", "n", "d", "low", "high"),
    [
        (50, 0, 50, -19.6, 19.6),  # half and half: the widest spread (se 0.1 at n=100)
        (100, 0, 0, 100.0, 100.0),  # everyone agrees: no spread
        (60, 20, 20, 24.32, 55.68),  # 40 +- 1.96 * sqrt(0.8 - 0.16) / 10
        (1, 0, 1, -100.0, 100.0),  # two answers apart: clipped to the scale
    ],
)
def test_nps_interval_is_the_normal_interval_of_a_plus_zero_minus_mean(
    p: int, n: int, d: int, low: float, high: float
) -> None:
    interval = nps_interval(p, n, d)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=0.01)


def test_no_interval_under_two_answers() -> None:
    assert nps_interval(1, 0, 0) is None
    assert nps_interval(0, 0, 0) is None


def test_trend_chart_carries_each_points_figures_and_skips_empty_periods() -> None:
    svg = trend_chart([TrendPoint("янв 26", 3, 1, 1), TrendPoint("фев 26", 0, 0, 0)])
    assert re.findall(r'data-nps="([^"]+)" data-n="(\d+)"', svg) == [("40.0", "5")]
    assert re.findall(r"<text class=\"count\"[^>]*>(\d+)<", svg) == ["5", "0"]  # empty: 0
    assert "<script" not in svg


def test_chart_labels_are_escaped() -> None:
    svg = pareto_chart([Bar("x", "<b>цена</b>", 2, "/nps?a=1&b=2")])
    assert "<b>" not in svg
    assert "&amp;b=2" in svg


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("звоните +7 (916) 123-45-67", "звоните +• (•••) •••-••-67"),
        ("тел.89161234567!", "тел.•••••••••67!"),
        ("номер 916 123 45 67", "номер ••• ••• •• 67"),
        ("+79161234567abc", "+•••••••••67abc"),
        ("заказ 12345 от 2026-01-31", "заказ 12345 от 2026-01-31"),
        ("8 916 1234567", "• ••• •••••67"),
    ],
)
def test_phone_numbers_in_free_text_keep_only_two_digits(written: str, masked: str) -> None:
    assert mask_phones_in_text(written) == masked


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+79161234567", "'+79161234567"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Иван", "Иван"),
        (5, 5),
        (None, None),
    ],
)
def test_formula_cells_are_written_as_text(value: object, written: object) -> None:
    assert neutralise(value) == written


def test_period_is_calendar_days_in_the_business_zone() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    chosen = parse_period({"from": "2026-03-01", "to": "2026-03-10"}, MOSCOW, now, 30)
    assert chosen.start == datetime(2026, 2, 28, 21, tzinfo=UTC)
    assert chosen.end == datetime(2026, 3, 10, 21, tzinfo=UTC)
    before = chosen.previous(MOSCOW)
    assert (before.first, before.last) == (date(2026, 2, 19), date(2026, 2, 28))
    fallback = parse_period({"from": "junk", "to": "1900-01-01"}, MOSCOW, now, 30)
    assert (fallback.first, fallback.last) == (date(2026, 2, 9), date(2026, 3, 10))
    swapped = parse_period({"from": "2026-03-05", "to": "2026-03-01"}, MOSCOW, now, 30)
    assert (swapped.first, swapped.last) == (date(2026, 3, 1), date(2026, 3, 5))


def test_buckets_end_now_and_follow_each_other() -> None:
    now = datetime(2026, 3, 11, 9, tzinfo=UTC)  # a Wednesday
    for buckets in (month_buckets(now, MOSCOW, 12), week_buckets(now, MOSCOW, 12)):
        assert len(buckets) == 12
        assert buckets[-1][2] == now
        for (_, _, end), (_, start, _) in itertools.pairwise(buckets):
            assert end == start
    assert week_buckets(now, MOSCOW, 1)[0][1] == datetime(2026, 3, 8, 21, tzinfo=UTC)
    assert month_buckets(now, MOSCOW, 1)[0][0] == "мар 26"


def test_pareto_bars_are_largest_first_with_the_previous_count_and_a_link() -> None:
    now = Counter({"price": 2, "delivery": 5, "none": 1})
    before = Counter({"price": 4, "service_quality": 1})
    bars = pareto_bars(now, before, {"from": "2026-03-01", "to": "2026-03-30"}, "detractor")
    assert [(b.key, b.value, b.previous) for b in bars] == [
        ("delivery", 5, 0),
        ("price", 2, 4),
        ("none", 1, 0),
        ("service_quality", 0, 1),  # gone this period: still shown, with its fall
    ]
    assert bars[0].href == "/nps?from=2026-03-01&to=2026-03-30&group=detractor&category=delivery"
    assert "category" not in bars[2].href
