"""`povtor call` as an operator testing a trunk uses it: it says what is wrong when no trunk
is configured, and stays on the line until the other side hangs up."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.integration.sip.peers import start_sipp

pytestmark = pytest.mark.sip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POVTOR_")}
    env.update(extra)
    return env


async def povtor_call(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "call", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_calling_a_number_without_a_trunk_says_what_to_configure(tmp_path: Path) -> None:
    code, out, err = await povtor_call("+79161234567", "--json", env=clean_env(), cwd=tmp_path)
    assert code == 2
    assert out == ""
    assert "No SIP trunk is configured" in err
    assert "POVTOR_SIP_PROXY" in err


async def test_a_test_call_stays_on_the_line_until_the_other_side_hangs_up(
    tmp_path: Path,
) -> None:
    sipp = await start_sipp(tmp_path, "bye_after_pause", fill={"PAUSE_MS": "2000"})
    env = clean_env(
        POVTOR_SIP_PROXY=f"127.0.0.1:{sipp.port}",
        POVTOR_SIP_LOCAL_HOST="127.0.0.1",
        POVTOR_SIP_LOCAL_PORT="0",
        POVTOR_SIP_RTP_PORT_MIN="0",
    )
    code, out, err = await povtor_call(
        f"sip:test@127.0.0.1:{sipp.port}", "--json", env=env, cwd=tmp_path
    )
    assert await sipp.finish() == 0, sipp.log()  # its BYE was answered: we did not hang up
    assert code == 0, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["outcome"] == "answered"
    assert 1.8 < line["duration_s"] < 10
