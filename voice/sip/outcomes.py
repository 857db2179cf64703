"""What a call's SIP ending means for the outreach engine (a pure decision)."""

from __future__ import annotations

from povtor.domain import OutcomeKind

BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480, 487})
REJECTED_CODES = frozenset({603})
# the trunk itself failed (RFC 3261 server failures): ours to retry, not the client's doing
TRUNK_FAILURE_CODES = frozenset({500, 502, 503, 504})


def outcome_for(
    *,
    answered: bool,
    final_code: int | None,
    ring_timeout: bool = False,
    client_hung_up_early: bool = False,
) -> OutcomeKind:
    """Map how a call ended to an :class:`OutcomeKind`.

    ``final_code`` is the final SIP answer to the INVITE (None when none came: a timeout).
    A ring timeout we ended with CANCEL is "no answer" whatever the 487 says; 487 without
    our CANCEL (the trunk gave up) is treated the same way.
    """
    if answered:
        return OutcomeKind.HUNG_UP_EARLY if client_hung_up_early else OutcomeKind.ANSWERED
    if ring_timeout:
        return OutcomeKind.NO_ANSWER
    if final_code is None:
        return OutcomeKind.FAILED
    if final_code in BUSY_CODES:
        return OutcomeKind.BUSY
    if final_code in NO_ANSWER_CODES:
        return OutcomeKind.NO_ANSWER
    if final_code in REJECTED_CODES:
        return OutcomeKind.REJECTED
    return OutcomeKind.FAILED
