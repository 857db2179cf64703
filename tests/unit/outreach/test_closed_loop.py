"""Which answers need a manager within 24 hours."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.followups import needs_manager
from povtor.domain import OutcomeKind


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"score": 0}, "detractor"),
        ({"score": 6}, "detractor"),
        ({"score": 7}, None),
        ({"score": 10}, None),
        ({"score": True}, None),  # a bool is not a score
        ({"score": "3"}, None),
        ({"score": 11}, None),
        ({}, None),
        ({"complaint": True}, "complaint"),
        ({"intent": "complaint", "score": 9}, "complaint"),
    ],
)
def test_detractors_and_complaints_need_a_manager(
    data: dict[str, Any], expected: str | None
) -> None:
    assert needs_manager(OutcomeKind.ANSWERED, data) == expected
