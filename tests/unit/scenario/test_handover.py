"""The client asks for a person at any question, by voice or by the scenario's key: the robot
says so and transfers, or with no number to transfer to, says a manager will call back."""

from __future__ import annotations

import pytest

from povtor.domain import Purpose
from tests.fakes.voice_call import FakeCall, Press, Say, ToneSynth
from tests.unit.scenario.test_runner import SCENARIOS, VALUES, steps, talk
from voice.listen import Listener
from voice.scenario import DEFAULT_CALLBACK_SAY, DEFAULT_HANDOVER_SAY, Handover
from voice.scenario_runner import ScenarioRunner
from voice.transfer import Transfer

NPS = SCENARIOS[Purpose.NPS]
WITH_KEY = NPS.model_copy(update={"handover": Handover(key="#")})


class TransferringCall(FakeCall):
    """A fake answered call whose transfer ends as told (the SIP side is tested with peers)."""

    def __init__(self, replies: list[object], result: Transfer) -> None:
        super().__init__([None, *replies])  # type: ignore[list-item]
        self.result = result
        self.transfers: list[str] = []

    async def transfer(self, target: str, wait_s: float) -> Transfer:
        self.transfers.append(target)
        return self.result


@pytest.mark.parametrize(
    "words", ["соедините с менеджером", "позовите оператора", "можно живого человека"]
)
async def test_asking_for_a_person_without_a_number_promises_a_call_back(words: str) -> None:
    result, _, _ = await talk(Purpose.NPS, [None, Say(words)])
    assert steps(result) == ["disclosure", "greeting", "score", "handover_callback"]
    assert result.prompts[-1]["text"] == DEFAULT_CALLBACK_SAY
    assert result.finished == "callback"
    transfer = result.data["transfer"]
    assert (transfer["stage"], transfer["by"], transfer["step"]) == ("no_target", "voice", "score")
    assert result.data["callback"] is True
    assert result.answers[0]["label"] == "person"
    assert result.answers[0]["text"] == words
    assert "score" not in result.data


async def test_the_scenario_key_asks_for_a_person_at_a_score_question() -> None:
    result, _, _ = await talk(Purpose.NPS, [None, Press("#")], scenario=WITH_KEY)
    assert steps(result)[-1] == "handover_callback"
    assert result.data["transfer"]["by"] == "keypad"
    assert result.answers[0] == {**result.answers[0], "label": "person", "via": "keypad"}


async def test_a_free_answer_asking_for_a_person_hands_over_instead_of_being_saved() -> None:
    result, _, _ = await talk(Purpose.NPS, [None, Press("3"), Say("дайте мне менеджера")])
    assert steps(result)[-2:] == ["ask_improve", "handover_callback"]
    assert result.data["score"] == 3
    assert result.data["transfer"]["step"] == "ask_improve"
    assert "reason_text" not in result.data


async def test_without_handover_a_request_for_a_person_is_no_answer() -> None:
    plain = NPS.model_copy(update={"handover": None})
    result, _, _ = await talk(
        Purpose.NPS, [None, Say("соедините с менеджером"), Press("9"), None], scenario=plain
    )
    assert steps(result)[:4] == ["disclosure", "greeting", "score", "score"]
    assert result.data["score"] == 9
    assert "transfer" not in result.data


async def test_an_opt_out_said_with_a_request_for_a_person_is_an_opt_out() -> None:
    result, _, _ = await talk(
        Purpose.NPS, [None, Say("не звоните мне больше и позовите оператора")]
    )
    assert result.finished == "optout"
    assert "transfer" not in result.data


async def _hand_over(result: Transfer) -> tuple[object, TransferringCall]:
    call = TransferringCall([Say("хочу поговорить с человеком"), None, None], result)
    listener = Listener(lambda: _words(call), threads=2)
    runner = ScenarioRunner(
        NPS, call, ToneSynth(), VALUES, listener=listener, transfer_to="sip:manager@pbx"
    )
    try:
        conversation = await runner.run()
        await call.hangup()
        await runner.close()
    finally:
        listener.close()
    return conversation, call


def _words(call: FakeCall) -> object:
    from tests.fakes.voice_call import HeardWordsRecognizer

    return HeardWordsRecognizer(call)


async def test_a_person_asked_for_is_connected_and_the_robot_leaves() -> None:
    conversation, call = await _hand_over(Transfer("sip:manager@pbx", "connected", 200,
                                                   route="bridge"))  # fmt: skip
    assert call.transfers == ["sip:manager@pbx"]
    assert steps(conversation)[-1] == "handover"  # type: ignore[arg-type]
    assert conversation.prompts[-1]["text"] == DEFAULT_HANDOVER_SAY  # type: ignore[attr-defined]
    assert conversation.finished == "transferred"  # type: ignore[attr-defined]
    data = conversation.data  # type: ignore[attr-defined]
    assert (data["transfer"]["route"], data["transfer"]["by"]) == ("bridge", "voice")
    assert "callback" not in data


async def test_a_failed_transfer_after_a_request_says_so_and_ends_with_a_call_back() -> None:
    conversation, _ = await _hand_over(Transfer("sip:manager@pbx", "failed", 486, "Busy Here",
                                                route="bridge"))  # fmt: skip
    assert steps(conversation)[-2:] == ["handover", "transfer_failed"]  # type: ignore[arg-type]
    assert conversation.finished == "callback"  # type: ignore[attr-defined]
    assert conversation.data["callback"] is True  # type: ignore[attr-defined]
