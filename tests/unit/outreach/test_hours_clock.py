"""Contact hours judged on the demo's fast clock: a client whose night it is on that clock
waits for its morning, which comes after (hours to morning) / speed of real time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from outreach.hours import is_allowed, next_allowed
from outreach.rules import ContactRules
from povtor.clock import SYSTEM_CLOCK, FastClock
from povtor.domain import ChannelKind

ORIGIN = datetime(2026, 12, 7, 4, 0, 7, 123456, tzinfo=UTC)  # a Monday, real time
# the demo's clock shows 03:00 in Vladivostok (UTC+10) at the origin: deep night there
SHOWN_START = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
RULES = ContactRules()  # messages 9-21, calls 9-20 on weekdays


def fast(speed: int) -> ContactRules:
    return replace(RULES, clock=FastClock(origin=ORIGIN, start=SHOWN_START, speed=speed))


@pytest.mark.parametrize("speed", [1, 120, 360, 7])
def test_a_night_client_waits_for_the_morning_the_fast_clock_shows(speed: int) -> None:
    rules = fast(speed)
    allowed = next_allowed(ORIGIN, "Asia/Vladivostok", ChannelKind.TELEGRAM, rules)
    # 03:00 -> 09:00 on the demo's clock: six hours of it, 6 h / speed of real time
    assert allowed == ORIGIN + timedelta(hours=6) / speed
    assert not is_allowed(ORIGIN, "Asia/Vladivostok", ChannelKind.TELEGRAM, rules)
    assert is_allowed(allowed, "Asia/Vladivostok", ChannelKind.TELEGRAM, rules)
    assert not is_allowed(allowed - timedelta(seconds=1), "Asia/Vladivostok",
                          ChannelKind.TELEGRAM, rules)  # fmt: skip


def test_a_day_client_is_reached_at_once_on_the_same_real_moment() -> None:
    rules = fast(120)  # the demo's clock shows Sunday 12:00 in New York: weekend calls 10-18
    for at in (ORIGIN, ORIGIN + timedelta(hours=5, minutes=59) / 120):
        assert next_allowed(at, "America/New_York", ChannelKind.CALL, rules) == at
    six_pm = ORIGIN + timedelta(hours=6) / 120
    assert next_allowed(six_pm, "America/New_York", ChannelKind.CALL, rules) > six_pm


def test_the_fast_clock_closes_the_day_at_its_evening() -> None:
    rules = fast(120)
    # Monday 20:00 in Moscow (17:00 UTC) on the demo's clock: calls are over for the day,
    # the next one is Tuesday 09:00 there
    evening = rules.clock.real(datetime(2026, 12, 7, 17, 0, tzinfo=UTC))
    morning = rules.clock.real(datetime(2026, 12, 8, 6, 0, tzinfo=UTC))
    assert next_allowed(evening, "Europe/Moscow", ChannelKind.CALL, rules) == morning
    assert morning - evening == timedelta(hours=13) / 120


def test_the_fast_clock_maps_both_ways_exactly() -> None:
    clock = FastClock(origin=ORIGIN, start=SHOWN_START, speed=120)
    for seconds in (0, 1, 59.5, 3600.25, -7):
        at = ORIGIN + timedelta(seconds=seconds)
        assert clock.real(clock.shown(at)) == at
    assert clock.shown(ORIGIN + timedelta(seconds=30)) == SHOWN_START + timedelta(hours=1)


def test_the_real_clock_shows_the_real_time() -> None:
    assert RULES.clock is SYSTEM_CLOCK
    assert SYSTEM_CLOCK.shown(ORIGIN) == ORIGIN == SYSTEM_CLOCK.real(ORIGIN)
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is not None
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_clock_refuses_a_zero_speed_or_naive_times() -> None:
    with pytest.raises(ValueError, match="speed"):
        FastClock(origin=ORIGIN, start=SHOWN_START, speed=0)
    with pytest.raises(ValueError, match="zone"):
        FastClock(origin=ORIGIN.replace(tzinfo=None), start=SHOWN_START, speed=2)
