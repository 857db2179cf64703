"""The attempt an execution gets: the claimed one, in progress on the channel decided."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from outreach.dispatcher import _in_progress
from povtor.domain import Attempt, AttemptState, ChannelKind, Purpose


def test_the_execution_sees_every_field_of_the_claimed_attempt() -> None:
    claimed = Attempt(
        id=7,
        client_id=3,
        purpose=Purpose.NPS,
        channel=ChannelKind.TELEGRAM,
        state=AttemptState.CLAIMED,
        not_before=datetime(2026, 5, 1, 9, tzinfo=UTC),
        idempotency_key="nps:3:2026-05",
        attempt_no=2,
        reason="delivered 5 days ago",
        payload={"order": "O-1"},
        our_failures=1,
    )
    # every field set above (a field added to Attempt must be copied too)
    assert {f.name for f in dataclasses.fields(Attempt)} == {
        "id",
        "client_id",
        "purpose",
        "channel",
        "state",
        "not_before",
        "idempotency_key",
        "attempt_no",
        "reason",
        "payload",
        "our_failures",
    }
    running = _in_progress(claimed, ChannelKind.CALL)
    assert running == dataclasses.replace(
        claimed, channel=ChannelKind.CALL, state=AttemptState.IN_PROGRESS
    )
