"""`povtor scenario try`: walking the shipped scripts with typed answers, every branch."""

from __future__ import annotations

import pytest

from povtor.domain import Purpose
from voice.scenario import TEMPLATE_VALUES, load_scenarios
from voice.scenario_try import walk

SCENARIOS = load_scenarios()


def talk(purpose: Purpose, typed: list[str | None]) -> tuple[list[str], dict, str, list[str]]:
    said: list[str] = []
    replies = list(typed)

    def hear(_: str) -> str | None:
        return replies.pop(0) if replies else None

    result = walk(SCENARIOS[purpose], TEMPLATE_VALUES, lambda _, text: said.append(text), hear)
    return result.said, result.data, result.finished, said


@pytest.mark.parametrize(
    ("purpose", "typed", "steps", "finished"),
    [
        (Purpose.NPS, ["9", "быстрая доставка"], ["ask_high", "thanks"], "end"),
        (Purpose.NPS, ["*", ""], ["ask_high", "thanks"], "end"),
        (Purpose.NPS, ["три", "дорого"], ["ask_improve", "thanks"], "end"),
        (Purpose.NPS, ["", ""], ["score", "score.retry", "no_score"], "end"),
        (Purpose.NPS, ["не звоните мне больше"], ["score", "optout_say"], "optout"),
        (Purpose.NPS, ["перезвоните позже"], ["score", "later_say"], "later"),
        (Purpose.NPS, ["/hangup"], ["score"], "call_ended"),
        (Purpose.REORDER, ["1"], ["remind", "agreed"], "end"),
        (Purpose.REORDER, ["нет, спасибо"], ["remind", "declined"], "end"),
        (Purpose.REORDER, ["3"], ["remind", "later"], "end"),
        (Purpose.REORDER, ["а кто это", "что"], ["remind.retry", "unclear"], "end"),
        (Purpose.WINBACK, ["цены выросли", "скидка"], ["back", "thanks"], "end"),
        (Purpose.WINBACK, ["", ""], ["why", "why.retry", "goodbye"], "end"),
        (Purpose.NPS, ["позовите оператора"], ["handover", "transfer_failed_say"], "callback"),
        (Purpose.REORDER, ["0"], ["remind", "handover", "transfer_failed_say"], "callback"),
    ],
)
def test_typed_answers_walk_the_same_branches_as_a_call(
    purpose: Purpose, typed: list[str | None], steps: list[str], finished: str
) -> None:
    said, _, ended, _ = talk(purpose, typed)
    assert said[0] == "disclosure"
    assert said[-len(steps) :] == steps
    assert ended == finished


def test_what_was_learnt_is_shown() -> None:
    _, data, _, texts = talk(Purpose.NPS, ["10", "вежливые менеджеры"])
    assert data == {"score": 10, "reason_text": "вежливые менеджеры"}
    assert "кофейни «Зерно»" in texts[0]
    _, data, _, _ = talk(Purpose.REORDER, ["да"])
    assert data == {"intent": "yes"}


def test_a_transfer_step_is_walked_as_a_refused_transfer() -> None:
    from voice.scenario import DEFAULT_TRANSFER_FAILED, Scenario

    scenario = Scenario.model_validate(
        {
            "purpose": Purpose.NPS,
            "start": "offer",
            "disclosure": "",
            "steps": {
                "offer": {"say": "Соединяю.", "transfer": True, "next": "bye"},
                "bye": {"say": "До свидания."},
            },
        }
    )
    said: list[str] = []
    result = walk(scenario, TEMPLATE_VALUES, lambda _, text: said.append(text), lambda _: None)
    assert result.said == ["offer", "transfer_failed_say", "bye"]
    assert said[1] == DEFAULT_TRANSFER_FAILED
    assert result.data["callback"] is True
    assert result.finished == "end"
