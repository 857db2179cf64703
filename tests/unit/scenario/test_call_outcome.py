"""A call's outcome for the outreach engine, and the history writes a conversation calls for."""

from __future__ import annotations

from typing import Any

import pytest

from povtor.domain import OutcomeKind, Purpose
from voice.call_outcome import history_writes, outcome_kind
from voice.scenario_runner import Conversation

ANSWERED = {"label": "promoter", "step": "score"}
NOTHING = {"label": "none", "step": "score"}
O = OutcomeKind  # noqa: E741


def talk(finished: str, *answers: dict[str, Any]) -> Conversation:
    return Conversation(answers=list(answers), finished=finished)


@pytest.mark.parametrize(
    ("engine", "conversation", "expected"),
    [
        (O.BUSY, None, O.BUSY),
        (O.NO_ANSWER, None, O.NO_ANSWER),
        (O.REJECTED, None, O.REJECTED),
        (O.FAILED, None, O.FAILED),
        (O.ANSWERED, talk("end", ANSWERED), O.ANSWERED),
        (O.HUNG_UP_EARLY, talk("call_ended", ANSWERED), O.ANSWERED),  # hung up on the goodbye
        (O.ANSWERED, talk("call_ended"), O.HUNG_UP_EARLY),  # hung up before any answer
        (O.HUNG_UP_EARLY, talk("call_ended"), O.HUNG_UP_EARLY),
        (O.ANSWERED, talk("end", NOTHING), O.ANSWERED),  # stayed on, said nothing usable
    ],
)
def test_outcome_kind(
    engine: OutcomeKind, conversation: Conversation | None, expected: OutcomeKind
) -> None:
    assert outcome_kind(engine, conversation) is expected


@pytest.mark.parametrize(
    ("purpose", "data", "writes"),
    [
        (Purpose.NPS, {"score": 9, "reason_text": "всё быстро"}, 1),
        (Purpose.NPS, {}, 0),
        (Purpose.NPS, {"optout": True}, 1),
        (Purpose.WINBACK, {"reason_text": "дорого", "reason_category": "price"}, 1),
        (Purpose.REORDER, {"intent": "yes"}, 0),
        (Purpose.REORDER, {"intent": "optout", "optout": True}, 1),
    ],
)
def test_history_writes(purpose: Purpose, data: dict[str, Any], writes: int) -> None:
    assert len(history_writes(purpose, 7, data, "abc")) == writes
