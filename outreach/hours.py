"""Quiet hours: when a client may be called or written to, in the client's own time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outreach.rules import ContactRules, Window
from povtor.domain import ChannelKind

HolidayCheck = Callable[[date], bool]
SEARCH_DAYS = 21  # longer than any run of public holidays (the Russian New Year is ~10 days)


def no_holidays(_day: date) -> bool:
    return False


@lru_cache(maxsize=256)
def zone(name: str, default: str = "Europe/Moscow") -> ZoneInfo:
    """The client's zone; an unknown name falls back to the default rather than failing."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def window_for(
    day: date, channel: ChannelKind, rules: ContactRules, is_holiday: HolidayCheck
) -> Window | None:
    """The allowed local hours on ``day``, or None when that channel rests all day."""
    holiday = is_holiday(day)
    if channel is ChannelKind.CALL:
        if holiday and not rules.holiday_calls:
            return None
        weekend = day.weekday() >= 5 or holiday
        return rules.call_weekend if weekend else rules.call_weekday
    if holiday and not rules.holiday_messages:
        return None
    return rules.message


def next_allowed(
    at: datetime,
    tz_name: str,
    channel: ChannelKind,
    rules: ContactRules,
    is_holiday: HolidayCheck = no_holidays,
) -> datetime:
    """The earliest moment >= ``at`` (UTC) when ``channel`` may reach a client in ``tz_name``.

    The hours are judged on the time the rules' clock shows (the real one, or the demo's fast
    clock); the answer is a real moment."""
    if at.tzinfo is None:
        raise ValueError("next_allowed needs an aware datetime")
    clock = rules.clock
    shown = clock.shown(at)
    tz = zone(tz_name)
    local_now = shown.astimezone(tz)
    for offset in range(SEARCH_DAYS):
        day = local_now.date() + timedelta(days=offset)
        window = window_for(day, channel, rules, is_holiday)
        if window is None or window.start >= window.end:
            continue
        # Wall-clock times through zoneinfo: correct across DST changes on that day.
        start = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day, window.end, tzinfo=tz).astimezone(UTC)
        candidate = max(start, shown.astimezone(UTC))
        if candidate < end:
            return at.astimezone(UTC) if candidate == shown else clock.real(candidate)
    raise ValueError(f"no allowed time for {channel} within {SEARCH_DAYS} days of {at}")


def is_allowed(
    at: datetime,
    tz_name: str,
    channel: ChannelKind,
    rules: ContactRules,
    is_holiday: HolidayCheck = no_holidays,
) -> bool:
    return next_allowed(at, tz_name, channel, rules, is_holiday) == at.astimezone(UTC)
