"""Caps per client per channel over local days, weeks and months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outreach.caps import cap_reached_until
from outreach.rules import Caps


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CAPS = Caps(per_day=1, per_week=2, per_month=4)


@pytest.mark.parametrize(
    ("now", "tz", "past", "expected"),
    [
        # nothing yet: allowed.
        (utc(2025, 3, 3, 10), "Europe/Moscow", [], None),
        # one call today (Moscow): blocked until local midnight = 21:00 UTC.
        (utc(2025, 3, 3, 12), "Europe/Moscow", [utc(2025, 3, 3, 7)], utc(2025, 3, 3, 21)),
        # yesterday's call does not count for today.
        (utc(2025, 3, 4, 7), "Europe/Moscow", [utc(2025, 3, 3, 7)], None),
        # Kamchatka (UTC+12): 21:30 UTC Sunday is Monday local; 11:00 UTC Monday still Monday.
        (utc(2025, 3, 3, 11), "Asia/Kamchatka", [utc(2025, 3, 2, 21, 30)], utc(2025, 3, 3, 12)),
        # ... 12:30 UTC Monday is Tuesday 00:30 local: a new day.
        (utc(2025, 3, 3, 12, 30), "Asia/Kamchatka", [utc(2025, 3, 2, 21, 30)], None),
        # two this week (Mon, Tue), Wednesday: blocked until next Monday 00:00 local.
        (
            utc(2025, 3, 5, 10),
            "Europe/Moscow",
            [utc(2025, 3, 3, 10), utc(2025, 3, 4, 10)],
            utc(2025, 3, 9, 21),
        ),
        # four this month in earlier weeks: blocked until the 1st of next month.
        (
            utc(2025, 3, 20, 10),
            "Europe/Moscow",
            [utc(2025, 3, 3, 10), utc(2025, 3, 4, 10), utc(2025, 3, 10, 10), utc(2025, 3, 11, 10)],
            utc(2025, 3, 31, 21),
        ),
        # Berlin across the DST change: the day ends at local midnight CEST (22:00 UTC).
        (utc(2025, 3, 31, 9), "Europe/Berlin", [utc(2025, 3, 31, 8)], utc(2025, 3, 31, 22)),
    ],
)
def test_cap_blocks_until_the_limit_lifts(
    now: datetime, tz: str, past: list[datetime], expected: datetime | None
) -> None:
    assert cap_reached_until(now, tz, past, CAPS) == expected


def test_week_and_day_caps_take_the_later_lift() -> None:
    past = [utc(2025, 3, 3, 10), utc(2025, 3, 4, 10)]
    # Tuesday: day cap lifts at Tuesday midnight but the week cap at Sunday midnight.
    assert cap_reached_until(utc(2025, 3, 4, 12), "Europe/Moscow", past, CAPS) == utc(
        2025, 3, 9, 21
    )


def test_higher_caps_allow_more() -> None:
    past = [utc(2025, 3, 3, 7)]
    assert cap_reached_until(utc(2025, 3, 3, 12), "Europe/Moscow", past, Caps(2, 4, 10)) is None
