"""Pacing over all clients: hourly and daily caps per channel and purpose, released evenly."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from outreach.pacing import PaceRule, hour_and_day_start, pace_until, parse_pacing
from povtor.domain import ChannelKind, Purpose
from povtor.errors import ConfigError

CALL, TG = ChannelKind.CALL, ChannelKind.TELEGRAM
MSK = "Europe/Moscow"
# 2026-03-03 is a Tuesday; 12:00 Moscow = 09:00 UTC
NOON = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
WINDOW = (time(9), time(21))  # 12 hours


def test_parse_pacing_reads_channels_purposes_and_limits() -> None:
    rules = parse_pacing("call/*=60/h,400/d; telegram/nps=100/h\n*/winback=50/d")
    assert rules == (
        PaceRule(CALL, None, 60, 400),
        PaceRule(TG, Purpose.NPS, 100, None),
        PaceRule(None, Purpose.WINBACK, None, 50),
    )
    assert parse_pacing("") == ()


@pytest.mark.parametrize("text", ["call=60/h", "fax/*=1/h", "call/*=60/w", "call/*=-1/h"])
def test_a_bad_pacing_rule_says_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="pacing rule"):
        parse_pacing(text)


def test_hour_and_day_start_follow_the_business_time_zone() -> None:
    hour, day = hour_and_day_start(NOON + timedelta(minutes=17), MSK)
    assert hour == NOON
    assert day == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # Moscow midnight


CALLS_60 = (PaceRule(CALL, None, 60, None),)


@pytest.mark.parametrize(
    ("now", "in_hour", "expected"),
    [
        (NOON, 0, None),  # the first of the hour goes at once
        (NOON, 1, NOON + timedelta(minutes=1)),  # the second one minute later, not a burst
        (NOON + timedelta(minutes=30), 30, None),  # on schedule
        (NOON + timedelta(minutes=30), 45, NOON + timedelta(minutes=45)),  # ahead: wait
        (NOON + timedelta(minutes=59), 60, NOON + timedelta(hours=1)),  # hour used up
    ],
)
def test_an_hourly_cap_is_released_evenly_over_the_hour(
    now: datetime, in_hour: int, expected: datetime | None
) -> None:
    counts = {(CALL, Purpose.REORDER): (in_hour, in_hour)}
    got = pace_until(now, CALL, Purpose.REORDER, counts, CALLS_60, tz_name=MSK)
    assert (got[0] if got else None) == expected


def test_a_daily_cap_spreads_over_the_window_and_stops_at_the_cap() -> None:
    rules = (PaceRule(CALL, None, None, 120),)  # 120 a day over 12 hours: one each 6 min
    at_nine = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    assert pace_until(at_nine, CALL, Purpose.NPS, {}, rules, tz_name=MSK, window=WINDOW) is None
    counts = {(CALL, Purpose.NPS): (0, 10)}
    got = pace_until(at_nine, CALL, Purpose.NPS, counts, rules, tz_name=MSK, window=WINDOW)
    assert got is not None
    assert got[0] == at_nine + timedelta(minutes=60)
    early = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 06:00 in Moscow, daytime further east
    assert pace_until(early, CALL, Purpose.NPS, counts, rules, tz_name=MSK, window=WINDOW) is None
    full = {(CALL, Purpose.NPS): (0, 120)}
    got = pace_until(NOON, CALL, Purpose.NPS, full, rules, tz_name=MSK, window=WINDOW)
    assert got is not None
    assert got[0] == datetime(2026, 3, 3, 21, 0, tzinfo=UTC)  # next Moscow midnight
    assert "daily cap" in got[1]


def test_caps_count_only_matching_channels_and_purposes() -> None:
    rules = (PaceRule(CALL, Purpose.WINBACK, 1, None), PaceRule(TG, None, 1, None))
    counts = {(CALL, Purpose.WINBACK): (1, 1), (TG, Purpose.NPS): (1, 1)}
    assert pace_until(NOON, CALL, Purpose.REORDER, counts, rules, tz_name=MSK) is None
    blocked = pace_until(NOON, CALL, Purpose.WINBACK, counts, rules, tz_name=MSK)
    assert blocked is not None
    assert blocked[1].startswith("hourly cap call/winback")
    assert pace_until(NOON, TG, Purpose.REORDER, counts, rules, tz_name=MSK) is not None


def test_every_matching_rule_must_agree_and_the_latest_wins() -> None:
    rules = (PaceRule(None, None, 600, None), PaceRule(CALL, None, 6, None))
    counts = {(CALL, Purpose.NPS): (1, 1)}
    got = pace_until(NOON, CALL, Purpose.NPS, counts, rules, tz_name=MSK)
    assert got is not None
    assert got[0] == NOON + timedelta(minutes=10)


def test_without_a_window_the_daily_budget_is_released_over_the_whole_business_day() -> None:
    rules = (PaceRule(CALL, None, None, 240),)  # 240 a day: one each 6 minutes from midnight
    midnight = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 00:00 in Moscow
    assert pace_until(midnight, CALL, Purpose.NPS, {}, rules, tz_name=MSK) is None
    counts = {(CALL, Purpose.NPS): (0, 100)}  # at 06:00 Moscow 60 are due: wait for the 100th
    got = pace_until(midnight + timedelta(hours=6), CALL, Purpose.NPS, counts, rules, tz_name=MSK)
    assert got is not None
    assert got[0] == midnight + timedelta(minutes=600)
