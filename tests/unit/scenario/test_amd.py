"""Answering-machine detection on made-up line audio: people, greetings, beeps, noise; and the
step runner hanging up on a machine or leaving it a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from povtor.domain import Purpose
from tests.fakes.voice_call import Audio, FakeCall, Press, ToneSynth
from voice.amd import AmdConfig, Detector, Verdict, detect
from voice.scenario import load_scenarios
from voice.scenario_runner import ScenarioRunner

RATE = 8000
RNG = np.random.default_rng(3)


def quiet(seconds: float, noise_dbfs: float = -70.0) -> np.ndarray:
    return RNG.normal(0, 32768 * 10 ** (noise_dbfs / 20), int(RATE * seconds))


def speech(seconds: float) -> np.ndarray:
    """Speech-like: syllables of shaped noise (~200 ms) with short gaps, at a talking level."""
    out: list[np.ndarray] = []
    while sum(map(len, out)) < seconds * RATE:
        syllable = RNG.normal(0, 4000, int(RATE * RNG.uniform(0.12, 0.25)))
        out += [syllable * np.hanning(len(syllable)) ** 0.3, quiet(RNG.uniform(0.03, 0.08))]
    return np.concatenate(out)[: int(seconds * RATE)]


def beep(seconds: float = 0.5) -> np.ndarray:
    return 12000 * np.sin(2 * np.pi * 1000 * np.arange(int(RATE * seconds)) / RATE)


def pcm(*parts: np.ndarray, noise_dbfs: float = -70.0) -> bytes:
    signal = np.concatenate(parts)
    signal = signal + quiet(len(signal) / RATE, noise_dbfs)
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


@pytest.mark.parametrize("noise", [-70.0, -45.0])
@pytest.mark.parametrize(
    ("parts", "verdict"),
    [
        ((quiet(0.4), speech(0.7), quiet(3)), Verdict.HUMAN),  # "Алло?"
        ((quiet(0.3), speech(0.6), quiet(0.9), speech(0.6), quiet(3)), Verdict.HUMAN),  # twice
        ((quiet(0.2), speech(2.5), quiet(9)), Verdict.UNSURE),  # a long hello: not hung up on
        ((quiet(0.2), *[np.concatenate([speech(1.5), quiet(0.45)])] * 5), Verdict.MACHINE),
        ((quiet(0.2), speech(6.0), quiet(1)), Verdict.MACHINE),
        ((quiet(0.3), speech(1.0), quiet(0.3), beep(), quiet(2)), Verdict.MACHINE),
        ((quiet(10),), Verdict.UNSURE),
    ],
)
def test_verdicts_on_made_up_lines(
    parts: tuple[np.ndarray, ...], verdict: Verdict, noise: float
) -> None:
    assert detect(pcm(*parts, noise_dbfs=noise)).verdict is verdict


def test_a_machine_is_called_as_soon_as_it_is_clear_and_why() -> None:
    found = detect(pcm(quiet(0.2), speech(10)))
    assert found.verdict is Verdict.MACHINE
    assert 3.5 <= found.at_s <= 4.5
    beeped = detect(pcm(quiet(0.2), speech(1.0), quiet(0.2), beep(1.0)))
    assert beeped.reason == "beep"
    assert beeped.at_s < 1.8


def test_the_greeting_is_over_after_its_beep_or_when_it_goes_quiet() -> None:
    for tail in (beep(0.5), quiet(1.2)):
        detector = Detector(AmdConfig())
        frames = pcm(quiet(0.2), speech(5.0), tail, quiet(0.1))
        over = [detector.greeting_over(frames[i : i + 320]) for i in range(0, len(frames), 320)]
        first = over.index(True) * 0.02
        assert 5.2 <= first <= 6.6, first


NPS = load_scenarios()[Purpose.NPS]


class ClockedCall(FakeCall):
    """Notes when (in frames of the far end's audio) each prompt started."""

    started: list[int]

    async def play(self, audio: bytes | Path) -> bool:
        self.started = [*getattr(self, "started", []), self.clock]
        return await super().play(audio)


async def run(replies: list[Any], **changes: Any) -> tuple[Any, ClockedCall]:
    call = ClockedCall(replies)
    # a disclosure as long as a real one (ToneSynth: 10 ms a character): about 6 s
    long = "Здравствуйте! Вам звонит голосовой робот. Разговор записывается. " * 9
    scenario = NPS.model_copy(update={"disclosure": long, **changes})
    runner = ScenarioRunner(scenario, call, ToneSynth(), {"company": "Кофейня"}, amd=AmdConfig())
    result = await runner.run()
    await call.hangup()
    await runner.close()
    return result, call


async def test_a_machine_is_hung_up_on_without_the_questions() -> None:
    greeting = pcm(quiet(0.2), speech(12), beep(), quiet(3))
    result, call = await run([Audio(greeting)])
    assert result.finished == "voicemail"
    assert [p["step"] for p in result.prompts] == ["disclosure"]
    assert not result.prompts[0]["completed"]  # cut short when the machine was recognised
    assert result.data["amd"]["verdict"] == "machine"
    assert call.stopped >= 1


async def test_a_machine_gets_the_message_after_its_beep() -> None:
    greeting = pcm(quiet(0.2), speech(6), beep(), quiet(5))
    result, call = await run([Audio(greeting), None], voicemail_say="Перезвоните нам, пожалуйста.")
    assert result.finished == "voicemail"
    assert [p["step"] for p in result.prompts] == ["disclosure", "voicemail"]
    assert result.prompts[1]["text"] == "Перезвоните нам, пожалуйста."
    assert call.started[1] * 0.02 >= 6.7  # after the greeting (6.2 s) and its beep


async def test_a_person_who_says_hello_and_listens_goes_on_to_the_questions() -> None:
    hello = pcm(quiet(0.4), speech(0.7), quiet(2))
    result, _ = await run([Audio(hello), None, Press("9"), None])
    assert result.finished == "end"
    assert result.data["amd"]["verdict"] == "human"
    assert result.data["score"] == 9
