"""Report periods: calendar days in the business's time zone, as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from povtor.errors import InvalidInput

DEFAULT_DAYS = 365


def period_from_dates(
    first: date | None, last: date | None, tz_name: str, today: date | None = None
) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) local time, in UTC; defaults to the last 365 days to today."""
    tz = ZoneInfo(tz_name)
    last = last or today or datetime.now(tz).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput(f"--from {first} is after --to {last}")
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return start, end


def months_between(start: datetime, end: datetime, tz_name: str) -> int:
    """Calendar months touched by [start, end) in the given zone."""
    tz = ZoneInfo(tz_name)
    first = start.astimezone(tz)
    last = (end - timedelta(microseconds=1)).astimezone(tz)
    return (last.year - first.year) * 12 + last.month - first.month + 1


def years_before(moment: datetime, years: int) -> datetime:
    """The same calendar instant ``years`` earlier (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def trailing_days(days: int | None, today: date, first_order: date | None) -> tuple[date, date]:
    """The ``days`` days up to ``today``; ``None``: all time, from the first order (today when
    there is none yet)."""
    if days is not None:
        return today - timedelta(days=days - 1), today
    return min(first_order or today, today), today
