"""Quiet hours in the client's own zone: DST and DST-free zones, UTC+12, day turns, holidays."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from outreach.holiday_calendar import holiday_check
from outreach.hours import is_allowed, next_allowed, window_for
from outreach.rules import ContactRules, Window
from povtor.domain import ChannelKind

RULES = ContactRules()
CALL, TG = ChannelKind.CALL, ChannelKind.TELEGRAM


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "tz", "channel", "expected"),
    [
        # Moscow, UTC+3 all year: Monday 08:59 local -> 09:00 local.
        (utc(2025, 3, 3, 5, 59), "Europe/Moscow", CALL, utc(2025, 3, 3, 6, 0)),
        # inside the window: now.
        (utc(2025, 3, 3, 12, 0), "Europe/Moscow", CALL, utc(2025, 3, 3, 12, 0)),
        # Monday 20:00 local is the end (exclusive): next day 09:00.
        (utc(2025, 3, 3, 17, 0), "Europe/Moscow", CALL, utc(2025, 3, 4, 6, 0)),
        (utc(2025, 3, 3, 16, 59), "Europe/Moscow", CALL, utc(2025, 3, 3, 16, 59)),
        # Friday 20:30 -> Saturday uses weekend hours, 10:00 local.
        (utc(2025, 3, 7, 17, 30), "Europe/Moscow", CALL, utc(2025, 3, 8, 7, 0)),
        # Messages: 9-21 every day; 21:00 local turns to the next morning.
        (utc(2025, 3, 8, 18, 0), "Europe/Moscow", TG, utc(2025, 3, 9, 6, 0)),
        (utc(2025, 3, 8, 17, 59), "Europe/Moscow", TG, utc(2025, 3, 8, 17, 59)),
        # Berlin springs forward on Sunday 2025-03-30 at 01:00 UTC: 10:00 CEST = 08:00 UTC.
        (utc(2025, 3, 30, 7, 0), "Europe/Berlin", CALL, utc(2025, 3, 30, 8, 0)),
        # the Saturday before, 10:00 CET = 09:00 UTC.
        (utc(2025, 3, 29, 7, 0), "Europe/Berlin", CALL, utc(2025, 3, 29, 9, 0)),
        # Berlin falls back on 2025-10-26: 10:00 CET = 09:00 UTC that Sunday.
        (utc(2025, 10, 26, 8, 30), "Europe/Berlin", CALL, utc(2025, 10, 26, 9, 0)),
        # Kamchatka, UTC+12 without DST: Sunday 20:00 UTC is Monday 08:00 local.
        (utc(2025, 3, 2, 20, 0), "Asia/Kamchatka", CALL, utc(2025, 3, 2, 21, 0)),
        # ... and Monday 20:00 local (08:00 UTC) closes the day: Tuesday 09:00 local.
        (utc(2025, 3, 3, 8, 0), "Asia/Kamchatka", CALL, utc(2025, 3, 3, 21, 0)),
        # New York (DST from 2025-03-09): 09:00 EDT = 13:00 UTC on Monday 2025-03-10.
        (utc(2025, 3, 10, 12, 0), "America/New_York", CALL, utc(2025, 3, 10, 13, 0)),
        # an unknown zone falls back to Moscow instead of failing.
        (utc(2025, 3, 3, 5, 0), "Mars/Olympus", CALL, utc(2025, 3, 3, 6, 0)),
    ],
)
def test_next_allowed_time_in_client_zone(
    at: datetime, tz: str, channel: ChannelKind, expected: datetime
) -> None:
    assert next_allowed(at, tz, channel, RULES) == expected


def test_russian_new_year_holidays_have_no_calls_but_messages() -> None:
    ru = holiday_check("RU")
    jan2 = utc(2025, 1, 2, 9, 0)  # 12:00 in Moscow, a public holiday
    # 2025-01-01..08 are public holidays in Russia; the 9th is a Thursday.
    assert next_allowed(jan2, "Europe/Moscow", CALL, RULES, ru) == utc(2025, 1, 9, 6, 0)
    assert next_allowed(jan2, "Europe/Moscow", TG, RULES, ru) == jan2


def test_holidays_are_taken_on_the_client_local_date() -> None:
    ru = holiday_check("RU")
    # 2024-06-11 23:00 UTC is already 12 June (Russia Day) in Kamchatka, not yet in Moscow.
    at = utc(2024, 6, 11, 23, 0)
    assert not is_allowed(at, "Asia/Kamchatka", CALL, RULES, ru)
    assert next_allowed(at, "Asia/Kamchatka", CALL, RULES, ru) == utc(2024, 6, 12, 21, 0)


def test_calls_on_holidays_use_weekend_hours_when_allowed() -> None:
    rules = ContactRules(holiday_calls=True)
    window = window_for(datetime(2025, 6, 12).date(), CALL, rules, holiday_check("RU"))
    assert window == rules.call_weekend


def test_business_changes_hours() -> None:
    rules = ContactRules(call_weekday=Window(time(11), time(12)))
    at = utc(2025, 3, 3, 9, 30)  # 12:30 Moscow: too late today
    assert next_allowed(at, "Europe/Moscow", CALL, rules) == utc(2025, 3, 4, 8, 0)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2025, 3, 3, 12), "Europe/Moscow", CALL, RULES)


def test_unknown_country_is_a_config_error() -> None:
    from povtor.errors import ConfigError

    with pytest.raises(ConfigError):
        holiday_check("XX")
