"""Pacing: hourly and daily caps over all clients together, per channel and per purpose, with
each cap released evenly so a day's contacts spread over the allowed hours instead of going
out in a burst at the first minute.

A rule ``call/winback=20/h,100/d`` lets the n-th win-back call of an hour (counting from 0)
start at ``hour_start + n * 3600 / 20`` at the earliest, and the n-th of the day at
``day_start + n * 24 h / 100`` (the business's day, in its time zone). The day's budget is
released over the whole day rather than the business's own office hours because clients live
in other zones: a Kamchatka client's morning is Moscow's night, and a budget opened only at
09:00 Moscow would either shut them out or, opened at midnight, be spent on them before
Moscow wakes. Budget not used at night is carried into the day (the release is cumulative),
and the hourly even release keeps that catch-up from becoming a burst. Every matching rule
must agree; the latest moment wins. The clients' own quiet hours are checked separately
(:mod:`outreach.hours`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from povtor.domain import ChannelKind, Purpose
from povtor.errors import ConfigError

Counts = Mapping[tuple[ChannelKind, Purpose], tuple[int, int]]  # -> (this hour, this day)


@dataclass(frozen=True, slots=True)
class PaceRule:
    channel: ChannelKind | None  # None: every channel together
    purpose: Purpose | None  # None: every purpose together
    per_hour: int | None = None
    per_day: int | None = None

    def matches(self, channel: ChannelKind, purpose: Purpose) -> bool:
        return (self.channel is None or self.channel is channel) and (
            self.purpose is None or self.purpose is purpose
        )

    def label(self) -> str:
        return f"{self.channel or '*'}/{self.purpose or '*'}"


def parse_pacing(text: str) -> tuple[PaceRule, ...]:
    """``"call/*=60/h,400/d; telegram/nps=100/h"`` -> rules; an empty text: no pacing."""
    rules = []
    for part in text.replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            target, limits = part.split("=")
            channel, purpose = (x.strip() for x in target.split("/"))
            per_hour = per_day = None
            for limit in limits.split(","):
                number, unit = limit.strip().split("/")
                if unit.strip() == "h":
                    per_hour = int(number)
                elif unit.strip() == "d":
                    per_day = int(number)
                else:
                    raise ValueError(unit)
            rule = PaceRule(
                None if channel == "*" else ChannelKind(channel),
                None if purpose == "*" else Purpose(purpose),
                per_hour,
                per_day,
            )
        except ValueError as err:
            raise ConfigError(
                f"pacing rule {part!r} is not 'channel/purpose=N/h,M/d' "
                "(channel: call, telegram or *; purpose: reorder, nps, winback or *)"
            ) from err
        if (rule.per_hour is not None and rule.per_hour < 0) or (
            rule.per_day is not None and rule.per_day < 0
        ):
            raise ConfigError(f"pacing rule {part!r}: limits must be >= 0")
        rules.append(rule)
    return tuple(rules)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Moscow")


def hour_and_day_start(now: datetime, tz_name: str) -> tuple[datetime, datetime]:
    """The start of the current hour and of the current local day, both UTC."""
    local = now.astimezone(_zone(tz_name))
    hour = local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return hour.astimezone(UTC), day.astimezone(UTC)


def matching(counts: Counts, rule: PaceRule) -> tuple[int, int]:
    hour = day = 0
    for (channel, purpose), (h, d) in counts.items():
        if rule.matches(channel, purpose):
            hour += h
            day += d
    return hour, day


def pace_until(
    now: datetime,
    channel: ChannelKind,
    purpose: Purpose,
    counts: Counts,
    rules: tuple[PaceRule, ...],
    *,
    tz_name: str,
    window: tuple[time, time] | None = None,
) -> tuple[datetime, str] | None:
    """None if one more contact may start at ``now``, else the earliest moment it may (UTC)
    and which cap holds it back. ``counts`` are the contacts started this hour and this day."""
    if not rules:  # no pacing: nothing to work out (called once per contact at dispatch)
        return None
    tz = _zone(tz_name)
    hour_start, day_start = hour_and_day_start(now, tz_name)
    latest: tuple[datetime, str] | None = None

    def later(at: datetime, why: str) -> None:
        nonlocal latest
        if at > now and (latest is None or at > latest[0]):
            latest = (at, why)

    for rule in rules:
        if not rule.matches(channel, purpose):
            continue
        in_hour, in_day = matching(counts, rule)
        if rule.per_day is not None:
            next_day = (day_start.astimezone(tz) + timedelta(days=1, hours=2)).replace(hour=0)
            if in_day >= rule.per_day:
                later(next_day.astimezone(UTC), f"daily cap {rule.label()} {rule.per_day}")
            else:
                w_start, w_end = day_start, next_day.astimezone(UTC)
                if window is not None and window[0] < window[1]:
                    local_day = day_start.astimezone(tz).date()
                    w_start = datetime.combine(local_day, window[0], tzinfo=tz).astimezone(UTC)
                    w_end = datetime.combine(local_day, window[1], tzinfo=tz).astimezone(UTC)
                if w_start <= now < w_end:
                    step = (w_end - w_start) / rule.per_day
                    later(w_start + step * in_day, f"daily cap {rule.label()} spread")
        if rule.per_hour is not None:
            if in_hour >= rule.per_hour:
                later(hour_start + timedelta(hours=1), f"hourly cap {rule.label()}")
            else:
                step = timedelta(hours=1) / rule.per_hour
                later(hour_start + step * in_hour, f"hourly cap {rule.label()} spread")
    return latest
