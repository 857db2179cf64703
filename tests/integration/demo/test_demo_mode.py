"""A worker in demo mode whose settings point a channel beyond loopback refuses to start."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


async def _refused_start(tmp_path: Path, **settings: str) -> str:
    """`povtor run` with only ``settings`` (none of the caller's POVTOR_*): it must refuse to
    start (exit 2); what it said."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POVTOR_")}
    env.update(settings)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        _, err = await worker.communicate()
    message = err.decode()
    assert worker.returncode == 2, message[-2000:]
    return message


async def test_demo_mode_worker_with_a_real_trunk_and_bot_refuses_to_start(
    tmp_path: Path,
) -> None:
    message = await _refused_start(
        tmp_path,
        POVTOR_DEMO_MODE="true",
        POVTOR_DATA_DIR=str(tmp_path / "data"),
        POVTOR_SIP_ENABLED="true",
        POVTOR_SIP_PROXY="sip.provider.example:5060",
        POVTOR_SIP_LOCAL_HOST="127.0.0.1",
        POVTOR_TELEGRAM_BOT_TOKEN="5012345678:AAF0realLookingTokenFromBotFather0000",
    )
    assert "demo mode" in message
    assert "POVTOR_SIP_PROXY" in message
    assert "POVTOR_TELEGRAM_API_BASE" in message
    assert not (tmp_path / "data" / "povtor.db").exists()  # nothing was opened


async def test_a_real_worker_refuses_the_demo_clock(tmp_path: Path) -> None:
    """Contact hours on a fast clock would reach real clients at night: demo mode only."""
    message = await _refused_start(
        tmp_path,
        POVTOR_DATA_DIR=str(tmp_path / "data"),
        POVTOR_DEMO_CLOCK_START="2026-12-07T06:00:00+03:00",
        POVTOR_DEMO_CLOCK_ORIGIN="2026-12-07T04:00:00+00:00",
        POVTOR_DEMO_CLOCK_SPEED="120",
    )
    assert "POVTOR_DEMO_CLOCK" in message
    assert not (tmp_path / "data" / "povtor.db").exists()
