"""A real phone (baresip) answers: each side hears the other's tone, keypad digits arrive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from povtor.domain import OutcomeKind
from tests.integration.sip.baresip_phone import BaresipPhone
from tests.integration.sip.peers import peak_frequency, read_wav, rms, tone, write_wav
from voice.recording_wav import deinterleave

pytestmark = pytest.mark.sip


async def test_phone_hears_the_robot_and_the_robot_hears_the_phone_and_its_keys(
    tmp_path: Path, engine_for
):
    phone_says = write_wav(tmp_path / "phone.wav", tone(1000, 8.0))
    async with (
        BaresipPhone(tmp_path / "phone", phone_says) as phone,
        engine_for(phone.sip_port, record=True) as engine,
    ):
        call = await engine.start_call(f"sip:bob@127.0.0.1:{phone.sip_port}")
        assert await call.wait_answered()
        await phone.wait_event("CALL_ESTABLISHED")
        heard: list[bytes] = []

        async def listen() -> None:
            async for frame in call.frames():
                heard.append(frame)

        listener = asyncio.create_task(listen())
        assert await call.play(tone(440, 1.5))
        for key in "73":
            await phone.command("sndcode", key)
            assert await call.next_digit(5) == key
        result = await call.hangup()
        await phone.wait_event("CALL_CLOSED")
        await listener

    assert result.outcome is OutcomeKind.ANSWERED
    assert result.dtmf == "73"
    # the robot heard the phone's 1 kHz tone, live and in the recording's right channel
    assert abs(peak_frequency(b"".join(heard)) - 1000) < 15
    channels, stereo = read_wav(result.recording.path)
    robot, client = deinterleave(stereo)
    assert channels == 2
    assert abs(peak_frequency(robot) - 440) < 10
    assert abs(peak_frequency(client) - 1000) < 15
    # the phone heard the robot's 440 Hz tone (sndfile keeps what it decoded)
    decoded = [read_wav(p)[1] for p in phone.heard_files() if "dec" in p.name]
    assert decoded, phone.heard_files()
    loudest = max(decoded, key=rms)
    assert abs(peak_frequency(loudest) - 440) < 10
