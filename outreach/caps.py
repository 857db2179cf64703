"""Caps per client per channel: at most N contacts a local day, week (Mon-Sun) and month."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from outreach.hours import zone
from outreach.rules import Caps


def _start(day: date, tz_name: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone(tz_name)).astimezone(UTC)


def cap_reached_until(
    at: datetime, tz_name: str, past_contacts: Iterable[datetime], caps: Caps
) -> datetime | None:
    """None if one more contact at ``at`` fits the caps, else when the earliest cap lifts (UTC).

    Days, weeks and months are the client's local calendar ones.
    """
    if (
        isinstance(past_contacts, list)
        and not past_contacts
        and min(caps.per_day, caps.per_week, caps.per_month) > 0
    ):
        return None  # no contact yet, every cap above zero: no calendar to work out
    tz = zone(tz_name)
    today = at.astimezone(tz).date()
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    day_n = week_n = month_n = 0
    for contact in past_contacts:
        local = contact.astimezone(tz).date()
        if local > today:
            continue
        if local == today:
            day_n += 1
        if week_start <= local:
            week_n += 1
        if month_start <= local:
            month_n += 1
    blocked: list[datetime] = []
    if day_n >= caps.per_day:
        blocked.append(_start(today + timedelta(days=1), tz_name))
    if week_n >= caps.per_week:
        blocked.append(_start(week_start + timedelta(days=7), tz_name))
    if month_n >= caps.per_month:
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        blocked.append(_start(next_month, tz_name))
    return max(blocked) if blocked else None


def history_since(at: datetime) -> datetime:
    """How far back contacts matter for the caps at ``at`` (a little over a month)."""
    return at - timedelta(days=33)
