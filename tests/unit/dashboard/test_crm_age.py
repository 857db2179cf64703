"""How long ago, as the CRM page says it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.crm_views import age_ru

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (None, "—"),
        (timedelta(seconds=30), "меньше минуты"),
        (timedelta(seconds=-30), "меньше минуты"),  # clocks of two machines
        (timedelta(minutes=12), "12 мин"),
        (timedelta(hours=3), "3 ч"),
        (timedelta(hours=3, minutes=5), "3 ч 5 мин"),
        (timedelta(days=2), "2 дн"),
        (timedelta(days=2, hours=4, minutes=59), "2 дн 4 ч"),
    ],
)
def test_age_is_rounded_down_to_the_largest_units(ago: timedelta | None, text: str) -> None:
    assert age_ru(None if ago is None else NOW - ago, NOW) == text
