"""The step runner on a fake call: scores by keypad and voice, retries, branches, opt-out."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from povtor.domain import Purpose
from tests.fakes.voice_call import (
    FakeCall,
    HangUp,
    HeardWordsRecognizer,
    Press,
    Reply,
    Say,
    ToneSynth,
)
from voice.listen import Listener
from voice.scenario import Scenario, load_scenarios
from voice.scenario_runner import Conversation, ScenarioRunner

SCENARIOS = load_scenarios()
VALUES: dict[str, Any] = {
    "name": "Иван",
    "company": "Магазин «Зерно»",
    "order_date": dt.date(2026, 3, 12),
    "items": "кофе в зёрнах",
    "category": "кофе",
    "days_since": 40,
}


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    made = Listener(None, threads=2)
    yield made
    made.close()


async def talk(
    purpose: Purpose,
    replies: list[Reply],
    *,
    voice: bool = True,
    scenario: Scenario | None = None,
    pace_s: float = 0.0,
) -> tuple[Conversation, FakeCall, ToneSynth]:
    # the client listens to the disclosure quietly, then replies as listed
    call = FakeCall([None, *replies], pace_s=pace_s)
    synth = ToneSynth()
    listener = Listener(lambda: HeardWordsRecognizer(call), threads=2) if voice else None
    runner = ScenarioRunner(
        scenario or SCENARIOS[purpose], call, synth, VALUES, listener=listener, key_wait_s=0.5
    )
    try:
        result = await runner.run()
        await call.hangup()
        await runner.close()
    finally:
        if listener is not None:
            listener.close()
    return result, call, synth


def steps(result: Conversation) -> list[str]:
    return [p["step"] for p in result.prompts]


async def test_nps_score_nine_by_keypad_asks_what_made_it_high() -> None:
    result, _call, _ = await talk(
        Purpose.NPS, [None, Press("9"), Say("быстрая доставка и вежливые менеджеры")]
    )
    assert steps(result) == ["disclosure", "greeting", "score", "ask_high", "thanks"]
    assert result.data["score"] == 9
    assert result.data["score_via"] == "keypad"
    assert result.data["reason_text"] == "быстрая доставка и вежливые менеджеры"
    assert result.data["reason_category"] is not None
    assert result.finished == "end"
    assert "optout" not in result.data


async def test_nps_score_by_voice_below_nine_asks_what_to_improve() -> None:
    result, _, _ = await talk(
        Purpose.NPS, [None, Say("ну наверное восемь"), Say("доставка очень долгая")]
    )
    assert steps(result) == ["disclosure", "greeting", "score", "ask_improve", "thanks"]
    assert result.data["score"] == 8
    assert result.data["score_via"] == "voice"
    assert result.data["reason_text"] == "доставка очень долгая"
    assert result.data["reason_category"] == "delivery"
    answer = result.answers[0]
    assert answer["label"] == "passive"
    assert answer["audio"][0] < answer["audio"][1]


@pytest.mark.parametrize(("keys", "score"), [("*", 10), ("10", 10), ("1", 1), ("0", 0)])
async def test_keypad_ten_is_star_or_one_then_zero(keys: str, score: int) -> None:
    result, _, _ = await talk(Purpose.NPS, [None, Press(keys), None])
    assert result.data["score"] == score


async def test_unclear_score_is_asked_once_more_with_the_retry_text() -> None:
    result, _, _synth = await talk(Purpose.NPS, [None, Say("даже не знаю"), Say("семь"), None])
    assert steps(result) == ["disclosure", "greeting", "score", "score", "ask_improve", "thanks"]
    retry = SCENARIOS[Purpose.NPS].steps["score"].retry_say
    assert retry is not None
    assert result.prompts[3]["text"].startswith("Извините")
    assert result.data["score"] == 7
    assert next(a["label"] for a in result.answers) == "passive"


async def test_silence_twice_ends_without_a_score() -> None:
    result, _, _ = await talk(Purpose.NPS, [None, None, None, None])
    assert steps(result) == ["disclosure", "greeting", "score", "score", "no_score"]
    assert "score" not in result.data
    assert result.answers == [
        {
            "step": "score",
            "label": "none",
            "via": "none",
            "text": "",
            "at": result.answers[0]["at"],
        }
    ]
    assert not result.learnt


async def test_keypad_only_without_a_listener_still_reads_the_score() -> None:
    nps = SCENARIOS[Purpose.NPS]
    quick = nps.model_copy(
        update={
            "steps": {
                **nps.steps,
                "ask_high": nps.steps["ask_high"].model_copy(update={"wait_s": 0.1}),
            }
        }
    )
    result, _, _ = await talk(Purpose.NPS, [None, Press("*"), None], voice=False, scenario=quick)
    assert result.data["score"] == 10
    assert steps(result) == ["disclosure", "greeting", "score", "ask_high", "thanks"]


async def test_opt_out_phrase_ends_the_call_at_any_question() -> None:
    result, _, _ = await talk(Purpose.NPS, [None, Say("не звоните мне больше")])
    assert result.data["optout"] is True
    assert result.data["intent"] == "optout"
    assert steps(result)[-1] == "optout"
    assert result.finished == "optout"
    assert "score" not in result.data


async def test_answer_spoken_during_the_question_cuts_the_robot_short() -> None:
    # 4x real time: the question lasts 2.3 s of audio, the answer 0.3 s + 0.8 s of silence
    result, call, _ = await talk(
        Purpose.NPS, [None, Say("девять", 0.3, during_prompt=True), None], pace_s=0.005
    )
    assert result.data["score"] == 9
    score_prompt = result.prompts[2]
    assert score_prompt["step"] == "score"
    assert score_prompt["completed"] is False
    assert call.stopped >= 1


async def test_reorder_keypad_three_means_call_back_later() -> None:
    result, _, _ = await talk(Purpose.REORDER, [Press("3"), None])
    assert result.data["intent"] == "later"
    assert steps(result) == ["disclosure", "remind", "later"]
    assert "двенадцатого марта вы заказывали у нас кофе в зёрнах" in result.prompts[1]["text"]


async def test_reorder_yes_by_voice() -> None:
    result, _, _ = await talk(Purpose.REORDER, [Say("да, давайте"), None])
    assert result.data["intent"] == "yes"
    assert steps(result) == ["disclosure", "remind", "agreed"]


async def test_reorder_unclear_twice_is_unknown() -> None:
    result, _, _ = await talk(Purpose.REORDER, [Say("а кто это"), Say("что"), None])
    assert steps(result) == ["disclosure", "remind", "remind", "unclear"]
    assert result.answers[-1]["label"] == "unknown"


async def test_winback_records_both_churn_answers() -> None:
    result, _, _ = await talk(
        Purpose.WINBACK,
        [None, Say("менеджер не разбирается в товаре"), Say("персональная скидка"), None],
    )
    assert steps(result) == ["disclosure", "greeting", "why", "back", "thanks"]
    assert result.data["reason_text"] == "менеджер не разбирается в товаре"
    assert result.data["reason_category"] == "manager_competence"
    assert result.data["return_text"] == "персональная скидка"


async def test_client_hanging_up_mid_question_stops_the_scenario() -> None:
    result, call, _ = await talk(Purpose.NPS, [None, HangUp()])
    assert result.finished == "call_ended"
    assert steps(result) == ["disclosure", "greeting", "score"]
    assert call.hung_up_by == "client"


async def test_free_answer_without_recognition_keeps_where_it_was_said(
    listener: Listener,
) -> None:
    call = FakeCall([None, Press("5"), Say("долго везли", 1.2), None])
    runner = ScenarioRunner(SCENARIOS[Purpose.NPS], call, ToneSynth(), VALUES, listener=listener)
    result = await runner.run()
    await call.hangup()
    await runner.close()
    assert result.data["score"] == 5
    assert result.data["reason_text"] is None
    start, end = result.data["reason_audio"]
    assert 1.0 <= end - start <= 1.5
