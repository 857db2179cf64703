"""A pass's planning answers each candidate exactly as ``plan_candidate`` does, though it works
out each channel and each first allowed moment once per pass."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from outreach.planner import PassPlan, plan_candidate
from outreach.rules import ContactRules
from povtor.clock import FastClock
from povtor.domain import Candidate, ChannelKind, ConsentChannel, Purpose

NOW = datetime(2026, 12, 31, 16, 40, 5, 250000, tzinfo=UTC)  # 19:40 in Moscow, holidays ahead
ZONES = ("Europe/Moscow", "Asia/Kamchatka", "Europe/Kaliningrad", "Asia/Vladivostok", "Bad/Zone")
CALL, TG = ConsentChannel.CALL, ConsentChannel.TELEGRAM
GRANTS = ((), ((CALL, True),), ((TG, True),), ((CALL, False), (TG, True)), ((TG, False),))


def new_year(day: date) -> bool:
    return day.month == 1 and day.day <= 8


def candidates() -> list[Candidate]:
    """Every combination that matters to the policies, due long ago, just now and later."""
    found = []
    combos = itertools.product(
        Purpose,
        ZONES,
        (None, ChannelKind.CALL, ChannelKind.TELEGRAM),
        (False, True),
        (False, True),
        GRANTS,
        GRANTS,
        (NOW - timedelta(days=40), NOW, NOW + timedelta(hours=3, seconds=1)),
    )
    for n, (purpose, zone, preferred, linked, opted_out, consents, ads, due) in enumerate(combos):
        found.append(
            Candidate(
                client_id=n,
                external_id=f"C{n}",
                purpose=purpose,
                due_at=due,
                reason="test",
                key=f"{purpose.value}:{n}",
                timezone=zone,
                preferred_channel=preferred,
                telegram_linked=linked,
                telegram_reachable=n % 7 != 0,
                consents=consents,
                opted_out=opted_out,
                ad_consents=ads,
            )
        )
    return found


FAST = FastClock(origin=NOW, start=NOW - timedelta(hours=11), speed=60)


@pytest.mark.parametrize(
    ("rules", "channels"),
    [
        (ContactRules(), frozenset(ChannelKind)),
        (ContactRules(require_consent=True, holiday_messages=False), frozenset(ChannelKind)),
        (ContactRules(require_ad_consent=False, holiday_calls=True), {ChannelKind.CALL}),
        (replace(ContactRules(), clock=FAST), frozenset(ChannelKind)),
    ],
)
def test_a_pass_plans_every_candidate_as_plan_candidate_does(
    rules: ContactRules, channels: set[ChannelKind]
) -> None:
    plan = PassPlan(NOW, rules, is_holiday=new_year, channels=channels)
    items = [plan(c) for c in candidates()]
    expected = [
        plan_candidate(c, NOW, rules, is_holiday=new_year, channels=channels) for c in candidates()
    ]
    assert items == expected
    assert {i.channel for i in items if i} == set(channels)  # both answers occur
    assert len({i.not_before for i in items if i}) >= 4  # and several moments
