"""Channel choice, consent and opt-out, retries by outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outreach.channel_choice import choose_channel
from outreach.permissions import channel_permitted
from outreach.retries import after_outcome
from outreach.rules import ContactRules
from povtor.domain import AttemptState, ChannelKind, ConsentChannel, OutcomeKind

CALL, TG = ChannelKind.CALL, ChannelKind.TELEGRAM
NOW = datetime(2025, 3, 3, 10, tzinfo=UTC)
RULES = ContactRules()


@pytest.mark.parametrize(
    ("preferred", "linked", "reachable", "allowed", "expected"),
    [
        (None, True, True, {CALL, TG}, TG),
        (None, False, True, {CALL, TG}, CALL),
        (None, True, False, {CALL, TG}, CALL),
        (CALL, True, True, {CALL, TG}, CALL),
        (TG, True, True, {CALL, TG}, TG),
        (TG, False, True, {CALL, TG}, CALL),
        (CALL, True, True, {TG}, TG),  # prefers calls but refused them
        (None, True, True, {CALL}, CALL),  # refused Telegram
        (None, False, True, {TG}, None),  # Telegram allowed but not linked, calls refused
        (None, True, True, set(), None),
    ],
)
def test_channel_choice(
    preferred: ChannelKind | None,
    linked: bool,
    reachable: bool,
    allowed: set[ChannelKind],
    expected: ChannelKind | None,
) -> None:
    chosen = choose_channel(
        preferred=preferred,
        telegram_linked=linked,
        telegram_reachable=reachable,
        permitted=lambda c: c in allowed,
    )
    assert chosen == expected


@pytest.mark.parametrize(
    ("channel", "opted_out", "consents", "require", "expected"),
    [
        (CALL, False, (), False, True),
        (CALL, False, (), True, False),
        (CALL, True, ((ConsentChannel.CALL, True),), False, False),  # opt-out beats consent
        (CALL, False, ((ConsentChannel.CALL, False),), False, False),
        (CALL, False, ((ConsentChannel.CALL, True),), True, True),
        (TG, False, ((ConsentChannel.CALL, True),), True, False),
        (TG, False, ((ConsentChannel.TELEGRAM, True),), True, True),
    ],
)
def test_consent_and_opt_out(
    channel: ChannelKind,
    opted_out: bool,
    consents: tuple[tuple[ConsentChannel, bool], ...],
    require: bool,
    expected: bool,
) -> None:
    assert (
        channel_permitted(channel, opted_out=opted_out, consents=consents, require_consent=require)
        is expected
    )


@pytest.mark.parametrize(
    ("kind", "channel", "attempt_no", "state", "retry_in", "fallback_in"),
    [
        (OutcomeKind.ANSWERED, CALL, 1, AttemptState.DONE, None, None),
        (OutcomeKind.BUSY, CALL, 1, AttemptState.RETRY_SCHEDULED, timedelta(minutes=30), None),
        (OutcomeKind.BUSY, CALL, 3, AttemptState.GIVEN_UP, None, None),
        (OutcomeKind.NO_ANSWER, CALL, 2, AttemptState.RETRY_SCHEDULED, timedelta(hours=2), None),
        (OutcomeKind.VOICEMAIL, CALL, 1, AttemptState.RETRY_SCHEDULED, timedelta(days=1), None),
        (OutcomeKind.VOICEMAIL, CALL, 2, AttemptState.GIVEN_UP, None, None),
        (OutcomeKind.FAILED, CALL, 1, AttemptState.RETRY_SCHEDULED, timedelta(minutes=15), None),
        (
            OutcomeKind.INTERRUPTED,
            CALL,
            1,
            AttemptState.RETRY_SCHEDULED,
            timedelta(minutes=5),
            None,
        ),
        (OutcomeKind.REJECTED, CALL, 1, AttemptState.GIVEN_UP, None, None),
        (OutcomeKind.UNREACHABLE, CALL, 1, AttemptState.GIVEN_UP, None, None),
        # Telegram: unreachable chat -> a call now; delivered -> a call after the answer timeout.
        (OutcomeKind.UNREACHABLE, TG, 1, AttemptState.GIVEN_UP, None, timedelta(0)),
        (OutcomeKind.DELIVERED, TG, 1, AttemptState.DONE, None, timedelta(hours=6)),
        (OutcomeKind.ANSWERED, TG, 1, AttemptState.DONE, None, None),
        (OutcomeKind.FAILED, TG, 3, AttemptState.GIVEN_UP, None, timedelta(0)),
    ],
)
def test_retries_by_outcome(
    kind: OutcomeKind,
    channel: ChannelKind,
    attempt_no: int,
    state: AttemptState,
    retry_in: timedelta | None,
    fallback_in: timedelta | None,
) -> None:
    decision = after_outcome(kind, channel, attempt_no, NOW, RULES)
    assert decision.state is state
    assert decision.retry_at == (None if retry_in is None else NOW + retry_in)
    assert decision.fallback_call_at == (None if fallback_in is None else NOW + fallback_in)


def test_retry_rules_come_from_settings() -> None:
    from outreach.rules import contact_rules
    from povtor.settings import OutreachSettings, TelegramSettings

    rules = contact_rules(
        OutreachSettings(retry_busy="10:5"), TelegramSettings(answer_timeout_s=60)
    )
    decision = after_outcome(OutcomeKind.BUSY, CALL, 4, NOW, rules)
    assert decision.retry_at == NOW + timedelta(minutes=10)
    assert after_outcome(OutcomeKind.DELIVERED, TG, 1, NOW, rules).fallback_call_at == (
        NOW + timedelta(seconds=60)
    )


def test_bad_retry_rule_is_a_config_error() -> None:
    from outreach.rules import parse_retry
    from povtor.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_retry("soon")
