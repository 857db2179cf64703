"""The contact rules a business can change, gathered from settings into one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from outreach.pacing import PaceRule, parse_pacing
from povtor.clock import SYSTEM_CLOCK, Clock
from povtor.domain import OutcomeKind
from povtor.errors import ConfigError
from povtor.ports import PlanningRules
from povtor.settings import OutreachSettings, TelegramSettings


@dataclass(frozen=True, slots=True)
class Window:
    """Local wall-clock hours when a contact is allowed: ``start <= t < end``."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Caps:
    per_day: int
    per_week: int
    per_month: int


@dataclass(frozen=True, slots=True)
class RetryRule:
    delay: timedelta
    max_attempts: int  # executions in total, the first one included


@dataclass(frozen=True, slots=True)
class ContactRules:
    call_weekday: Window = Window(time(9), time(20))
    call_weekend: Window = Window(time(10), time(18))
    message: Window = Window(time(9), time(21))
    holiday_calls: bool = False
    holiday_messages: bool = True
    call_caps: Caps = Caps(1, 2, 3)
    message_caps: Caps = Caps(1, 3, 6)
    require_consent: bool = False
    require_ad_consent: bool = True
    pacing: tuple[PaceRule, ...] = ()  # caps over all clients together
    pacing_timezone: str = "Europe/Moscow"  # the business's day and hours for those caps
    answer_timeout: timedelta = timedelta(hours=6)
    clock: Clock = SYSTEM_CLOCK  # whose time of day the windows above are judged on
    retries: dict[OutcomeKind, RetryRule] = field(
        default_factory=lambda: {
            OutcomeKind.BUSY: RetryRule(timedelta(minutes=30), 3),
            OutcomeKind.NO_ANSWER: RetryRule(timedelta(hours=2), 3),
            OutcomeKind.VOICEMAIL: RetryRule(timedelta(days=1), 2),
            OutcomeKind.FAILED: RetryRule(timedelta(minutes=15), 3),
            OutcomeKind.INTERRUPTED: RetryRule(timedelta(minutes=5), 3),
            OutcomeKind.HUNG_UP_EARLY: RetryRule(timedelta(days=1), 2),
        }
    )


def parse_retry(text: str) -> RetryRule:
    """'30:3' -> 30 minutes between tries, at most 3 tries."""
    try:
        minutes, attempts = text.split(":")
        rule = RetryRule(timedelta(minutes=float(minutes)), int(attempts))
    except ValueError as err:
        raise ConfigError(f"retry rule {text!r} is not 'delay_minutes:max_attempts'") from err
    if rule.max_attempts < 1 or rule.delay < timedelta(0):
        raise ConfigError(f"retry rule {text!r}: need delay >= 0 and max_attempts >= 1")
    return rule


def contact_rules(
    settings: OutreachSettings,
    telegram: TelegramSettings,
    timezone: str = "Europe/Moscow",
    clock: Clock = SYSTEM_CLOCK,
) -> ContactRules:
    s = settings
    return ContactRules(
        clock=clock,
        call_weekday=Window(s.call_weekday_start, s.call_weekday_end),
        call_weekend=Window(s.call_weekend_start, s.call_weekend_end),
        message=Window(s.message_start, s.message_end),
        holiday_calls=s.holiday_calls,
        holiday_messages=s.holiday_messages,
        call_caps=Caps(s.calls_per_day, s.calls_per_week, s.calls_per_month),
        message_caps=Caps(s.messages_per_day, s.messages_per_week, s.messages_per_month),
        require_consent=s.require_consent,
        require_ad_consent=s.require_ad_consent,
        pacing=parse_pacing(s.pacing),
        pacing_timezone=timezone,
        answer_timeout=timedelta(seconds=telegram.answer_timeout_s),
        retries={
            OutcomeKind.BUSY: parse_retry(s.retry_busy),
            OutcomeKind.NO_ANSWER: parse_retry(s.retry_no_answer),
            OutcomeKind.VOICEMAIL: parse_retry(s.retry_voicemail),
            OutcomeKind.FAILED: parse_retry(s.retry_failed),
            OutcomeKind.INTERRUPTED: parse_retry(s.retry_interrupted),
            OutcomeKind.HUNG_UP_EARLY: parse_retry(s.retry_hung_up_early),
        },
    )


def planning_rules(settings: OutreachSettings) -> PlanningRules:
    s = settings
    return PlanningRules(
        reorder_lead_days=s.reorder_lead_days,
        reorder_fallback_cycle_days=s.reorder_fallback_cycle_days,
        reorder_min_cycle_days=s.reorder_min_cycle_days,
        reorder_grace_days=s.reorder_grace_days,
        nps_after_delivery_days=s.nps_after_delivery_days,
        nps_grace_days=s.nps_grace_days,
        nps_window_days=s.nps_window_days,
        winback_after_days=tuple(sorted(s.winback_after_days)),
        winback_overdue_factor=s.winback_overdue_factor,
        winback_max_silence_days=s.winback_max_silence_days,
    )
