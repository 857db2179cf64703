"""Barge-in against a real phone: baresip starts talking in the middle of a long question and
the robot stops saying it at once, then takes the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from povtor.domain import OutcomeKind, Purpose
from povtor.settings import CallSettings, Settings
from tests.integration.scenario.amd_set import _mix, _silence, _speech
from tests.integration.scenario.baresip import start_baresip
from tests.integration.scenario.test_call_channel_sip import CLIENT, attempt
from voice.call_channel import build_call_channel
from voice.scenario import load_scenario
from voice.scenario_runner import prompt_texts
from voice.tts import EspeakSynth

pytestmark = pytest.mark.sip

SCENARIO = """
purpose: winback
start: why
disclosure: Здравствуйте! Вам звонит голосовой робот. Разговор записывается.
steps:
  why:
    ask: free
    save: reason
    retries: 0
    wait_s: 1.5
    say: >-
      Почему вы перестали у нас покупать? Расскажите, пожалуйста, подробно, что именно вам не
      понравилось, а мы всё внимательно выслушаем и обязательно передадим руководству.
    next: thanks
  thanks:
    say: Спасибо!
    next: end
"""


async def test_client_talking_over_the_question_stops_it_at_once(
    tmp_path: Path, engine_for
) -> None:
    own = tmp_path / "scenarios"
    own.mkdir()
    (own / "winback.yaml").write_text(SCENARIO, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data",
        call=CallSettings(scenarios_dir=own, live_asr=False, tts_engine="espeak"),
    )
    # the prompts' lengths, from the same synthesiser the call will use (and its cache)
    synth = EspeakSynth(settings.data_dir / "prompts")
    texts = prompt_texts(load_scenario(own / "winback.yaml"), {})
    disclosure_s = len(await synth.synth(texts["disclosure"])) / 16000
    question_s = len(await synth.synth(texts["why"])) / 16000
    assert question_s > 8
    answer = await _speech("Цены выросли, а доставка стала медленной.", "ru+m3", 160)
    talk_at = disclosure_s + 1.5  # one and a half seconds into the question
    line = np.concatenate([_silence(talk_at), answer, _silence(40)])
    phone = await start_baresip(
        tmp_path, CLIENT.phones[0], source_pcm=_mix(line, -60, np.random.default_rng(2))
    )
    try:
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker")
            try:
                running = asyncio.create_task(channel.execute(attempt(Purpose.WINBACK), CLIENT))
                await phone.wait_event("CALL_ESTABLISHED", deadline_s=60)
                async with asyncio.timeout(60):
                    outcome = await running
                await phone.wait_event("CALL_CLOSED")
            finally:
                channel.close()
    finally:
        await phone.stop()

    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    prompts = outcome.data["prompts"]
    assert [p["step"] for p in prompts] == ["disclosure", "why", "thanks"]
    why = prompts[1]
    assert why["completed"] is False
    said_s = why["end"] - why["start"]
    assert said_s < 3.5, said_s  # stopped ~0.3 s after the client began, not after 8+ s
    (answered,) = outcome.data["answers"]
    assert answered["label"] == "answered"
    start, end = answered["audio"]
    assert end - start > 1.5  # the whole answer was listened to after the robot stopped
