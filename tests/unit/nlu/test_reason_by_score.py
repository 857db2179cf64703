"""A promoter's answer is what they liked: no churn category on praise."""

from __future__ import annotations

import asyncio

import pytest

from nlu.reason import reason_category
from povtor.domain import Purpose, ReasonCategory
from povtor.ports import NewNpsResponse
from voice.call_outcome import history_writes


@pytest.mark.parametrize(
    ("text", "score", "expected"),
    [
        ("Курьер привёз быстро, а цены у вас высокие", 10, None),  # a promoter: what they liked
        ("Курьер привёз быстро, а цены у вас высокие", 9, None),
        ("Курьер привёз быстро, а цены у вас высокие", 8, ReasonCategory.PRICE),
        ("дорого", 3, ReasonCategory.PRICE),
        ("дорого", None, ReasonCategory.PRICE),  # a win-back answer has no score
        ("", 2, None),
        (None, 2, None),
    ],
)
def test_reason_category_by_score(
    text: str | None, score: int | None, expected: ReasonCategory | None
) -> None:
    assert reason_category(text, score) is expected


@pytest.mark.parametrize(("score", "category"), [(10, None), (6, ReasonCategory.PRICE)])
def test_a_call_files_a_promoters_reason_without_a_category(
    score: int, category: ReasonCategory | None
) -> None:
    data = {"score": score, "reason_text": "цены высокие", "reason_category": "price"}
    [write] = history_writes(Purpose.NPS, 1, data, "call-1")
    recorded: list[object] = []

    class History:
        async def record_nps(self, response: object) -> None:
            recorded.append(response)

    asyncio.run(write(History()))  # type: ignore[arg-type]
    assert isinstance(recorded[0], NewNpsResponse)
    assert recorded[0].reason_category is category
