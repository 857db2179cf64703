"""An answered call to SIPp with RTP echo: audio both ways by content, recording, CLI JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from povtor.domain import OutcomeKind
from tests.integration.sip.peers import (
    peak_frequency,
    read_wav,
    rms,
    start_sipp,
    tone,
    write_wav,
)
from voice.recording_wav import deinterleave

pytestmark = pytest.mark.sip


async def test_answered_call_sends_prompt_and_hears_its_echo(tmp_path: Path, engine_for) -> None:
    sipp = await start_sipp(tmp_path, None, builtin="uas", rtp_echo=True)
    async with engine_for(sipp.port, record=True) as engine:
        call = await engine.start_call(f"sip:echo@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        heard: list[bytes] = []

        async def listen() -> None:
            async for frame in call.frames():
                heard.append(frame)

        listener = asyncio.create_task(listen())
        assert await call.play(tone(440, 1.0))
        result = await call.hangup()
        await listener
    assert await sipp.finish() == 0, sipp.log()

    assert result.outcome is OutcomeKind.ANSWERED
    assert result.sip_code == 200
    assert result.hung_up_by == "robot"
    assert result.duration_s >= 0.95
    assert result.packets_received > 40
    echoed = b"".join(heard)
    assert abs(peak_frequency(echoed) - 440) < 10
    assert result.recording is not None
    channels, stereo = read_wav(result.recording.path)
    assert channels == 2
    robot, client = deinterleave(stereo)
    assert abs(peak_frequency(robot) - 440) < 10
    assert abs(peak_frequency(client) - 440) < 10
    assert rms(client) > 1000


async def test_call_cli_prints_the_json_contract_as_last_line(tmp_path: Path) -> None:
    sipp = await start_sipp(tmp_path, None, builtin="uas", rtp_echo=True)
    prompt = write_wav(tmp_path / "prompt.wav", tone(1000, 0.5))
    record = tmp_path / "out" / "call.wav"
    record.parent.mkdir()
    env = dict(os.environ)
    env.update(
        POVTOR_SIP_PROXY=f"127.0.0.1:{sipp.port}",
        POVTOR_SIP_LOCAL_HOST="127.0.0.1",
        POVTOR_SIP_LOCAL_PORT="0",
        POVTOR_SIP_RTP_PORT_MIN="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "call", f"sip:echo@127.0.0.1:{sipp.port}",
        "--play", str(prompt), "--record", str(record), "--ring-timeout", "5", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert await sipp.finish() == 0, sipp.log()
    assert process.returncode == 0, err.decode()
    line = json.loads(out.decode().strip().splitlines()[-1])
    assert set(line) == {"outcome", "sip_code", "duration_s", "dtmf", "recording"}
    assert line["outcome"] == "answered"
    assert line["sip_code"] == 200
    assert line["dtmf"] == ""
    assert line["recording"] == str(record)
    assert 0.4 < line["duration_s"] < 5
    channels, stereo = read_wav(record)
    robot, client = deinterleave(stereo)
    assert channels == 2
    assert abs(peak_frequency(robot) - 1000) < 15
    assert abs(peak_frequency(client) - 1000) < 15
