"""Answering machines over real SIP and on the synthetic set of people and voicemails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from povtor.domain import OutcomeKind, Purpose
from tests.integration.scenario.amd_set import MACHINE, _beep, _mix, _silence, _speech, build
from tests.integration.scenario.baresip import start_baresip
from tests.integration.scenario.test_call_channel_sip import CLIENT, attempt, settings_for
from voice.amd import Verdict, detect
from voice.call_channel import build_call_channel


async def test_on_the_synthetic_set_a_person_is_never_taken_for_a_machine() -> None:
    clips = await build(limit_voices=2)
    verdicts = [(clip.machine, detect(clip.pcm).verdict is Verdict.MACHINE) for clip in clips]
    machines = sum(machine for machine, _ in verdicts)
    true_positive = sum(machine and said for machine, said in verdicts)
    false_positive = sum(said and not machine for machine, said in verdicts)
    assert machines >= 90
    assert len(verdicts) - machines >= 100
    assert false_positive == 0  # precision of "machine" 1.0 here; 0.98 is the floor
    assert true_positive / machines >= 0.9


@pytest.mark.sip
async def test_a_voicemail_greeting_is_hung_up_on_and_reported_as_voicemail(
    tmp_path: Path, engine_for
) -> None:
    greeting = np.concatenate(
        [_silence(0.3), await _speech(MACHINE[0], "ru+f2", 160), _beep(0.6), _silence(20)]
    )
    pcm = _mix(greeting, -50.0, np.random.default_rng(1))
    phone = await start_baresip(tmp_path, CLIENT.phones[0], source_pcm=pcm)
    try:
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings_for(tmp_path), engine, worker_id="test-worker")
            try:
                running = asyncio.create_task(channel.execute(attempt(Purpose.NPS), CLIENT))
                await phone.wait_event("CALL_ESTABLISHED")
                async with asyncio.timeout(60):
                    outcome = await running
                await phone.wait_event("CALL_CLOSED")
            finally:
                channel.close()
    finally:
        await phone.stop()
    assert outcome.kind is OutcomeKind.VOICEMAIL, outcome
    data = outcome.data
    assert data["finished"] == "voicemail"
    assert data["amd"]["verdict"] == "machine"
    assert 2.0 < data["amd"]["at"] < 8.0
    assert data["hung_up_by"] == "robot"
    assert [p["step"] for p in data["prompts"]] == ["disclosure"]
    assert "score" not in data
    assert data["duration_s"] < 15
