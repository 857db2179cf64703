"""What happens after an outcome: done, a retry later, a fallback to a call, or giving up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from outreach.rules import ContactRules
from povtor.domain import AttemptState, ChannelKind, OutcomeKind


@dataclass(frozen=True, slots=True)
class AfterOutcome:
    state: AttemptState  # DONE, RETRY_SCHEDULED or GIVEN_UP
    retry_at: datetime | None = None
    fallback_call_at: datetime | None = None  # plan a call attempt for this moment
    reason: str = ""


def after_outcome(
    kind: OutcomeKind,
    channel: ChannelKind,
    attempt_no: int,
    now: datetime,
    rules: ContactRules,
    *,
    ours: bool = False,
) -> AfterOutcome:
    """Decide the next state of an attempt from the outcome of execution ``attempt_no``.

    ``ours``: the failure was on our side (a trunk down or not registered). The client did
    nothing, so no try is used up: it is retried after the ``failed`` delay for as long as the
    trunk stays down (the trouble is on /healthz and the dashboard, not in the client's record).
    """
    telegram = channel is ChannelKind.TELEGRAM
    if ours:
        rule = rules.retries.get(OutcomeKind.FAILED)
        delay = rule.delay if rule is not None else timedelta(minutes=15)
        return AfterOutcome(
            AttemptState.RETRY_SCHEDULED, retry_at=now + delay, reason=f"ours: {kind.value}"
        )
    if kind is OutcomeKind.ANSWERED:
        return AfterOutcome(AttemptState.DONE, reason="answered")
    if kind is OutcomeKind.DELIVERED:
        if telegram:
            return AfterOutcome(
                AttemptState.DONE,
                fallback_call_at=now + rules.answer_timeout,
                reason="delivered; a call follows if no answer",
            )
        return AfterOutcome(AttemptState.DONE, reason="delivered")
    if kind is OutcomeKind.UNREACHABLE:
        if telegram:
            return AfterOutcome(
                AttemptState.GIVEN_UP, fallback_call_at=now, reason="chat unreachable: call"
            )
        return AfterOutcome(AttemptState.GIVEN_UP, reason="number unreachable")
    if kind is OutcomeKind.REJECTED:
        return AfterOutcome(AttemptState.GIVEN_UP, reason="rejected by the client")
    rule = rules.retries.get(kind)
    if rule is not None and attempt_no < rule.max_attempts:
        return AfterOutcome(
            AttemptState.RETRY_SCHEDULED,
            retry_at=now + rule.delay,
            reason=f"{kind.value}: try {attempt_no + 1} of {rule.max_attempts}",
        )
    if telegram:
        return AfterOutcome(
            AttemptState.GIVEN_UP, fallback_call_at=now, reason=f"{kind.value}: call instead"
        )
    return AfterOutcome(AttemptState.GIVEN_UP, reason=f"{kind.value}: no tries left")
