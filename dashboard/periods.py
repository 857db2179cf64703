"""Periods the pages show: calendar days, weeks and months in the business's time zone.

A period is [first day 00:00, day after the last 00:00) local time as UTC instants: the same
rule as ``povtor report --from --to``, so a page and the command agree for the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MONTHS_RU = (
    "янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date  # inclusive
    start: datetime  # UTC
    end: datetime  # UTC, exclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self, tz: ZoneInfo) -> Period:
        """The period of the same length just before this one."""
        last = self.first - timedelta(days=1)
        return period(last - timedelta(days=self.days - 1), last, tz)

    def query(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def period(first: date, last: date, tz: ZoneInfo) -> Period:
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return Period(first, last, start, end)


def parse_period(query: Any, tz: ZoneInfo, now: datetime, default_days: int) -> Period:
    """``from``/``to`` (YYYY-MM-DD) from the query; missing or bad values fall back to the last
    ``default_days`` days up to today; a reversed pair is swapped."""
    today = now.astimezone(tz).date()
    last = _date(query.get("to")) or today
    first = _date(query.get("from")) or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    return period(first, last, tz)


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return parsed if date(1990, 1, 1) <= parsed <= date(2100, 1, 1) else None


def month_buckets(now: datetime, tz: ZoneInfo, count: int) -> list[tuple[str, datetime, datetime]]:
    """The last ``count`` calendar months (the current one up to ``now``), oldest first."""
    local = now.astimezone(tz)
    year, month = local.year, local.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=tz))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    starts.reverse()
    ends = [s.astimezone(UTC) for s in starts[1:]] + [now]
    return [
        (f"{MONTHS_RU[s.month - 1]} {s:%y}", s.astimezone(UTC), e)
        for s, e in zip(starts, ends, strict=True)
    ]


def week_buckets(now: datetime, tz: ZoneInfo, count: int) -> list[tuple[str, datetime, datetime]]:
    """The last ``count`` weeks from Monday (the current one up to ``now``), oldest first."""
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=k) for k in range(count - 1, -1, -1)]
    result = []
    for i, s in enumerate(starts):
        start = datetime.combine(s, time(), tz).astimezone(UTC)
        end = (
            datetime.combine(starts[i + 1], time(), tz).astimezone(UTC)
            if i + 1 < len(starts)
            else now
        )
        result.append((f"{s:%d.%m}", start, end))
    return result
