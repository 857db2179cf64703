"""A worker SIGKILLed in the middle of a call, restarted: the call is marked interrupted, what
was recorded survives as a finished recording linked to the call, and the client is not dialled
again for the same attempt. Real processes: `povtor run` and SIPp answering as the phone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import wave
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.db import session_factory
from tests.e2e.test_worker import ROOT, _free_port, _zone_in_daytime
from tests.integration.sip.peers import free_port, start_sipp, wait_until
from voice.call_records import CallState
from voice.call_store import CallStore
from voice.recording_wav import deinterleave

pytestmark = [pytest.mark.e2e, pytest.mark.sip]


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav.part")) if folder.is_dir() else []


def calling_worker_env(db_url: str, data: Path, sipp_port: int, **settings: str) -> dict[str, str]:
    """A `povtor run` that calls through the SIPp at ``sipp_port`` (no dashboard, no speech
    model, holidays allowed, a fast dispatcher), plus ``settings`` (POVTOR_* names)."""
    return {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(data),
        "POVTOR_METRICS_PORT": str(_free_port()),
        "POVTOR_DASHBOARD_ENABLED": "false",
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{sipp_port}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": str(free_port()),
        "POVTOR_CALL_LIVE_ASR": "false",
        "POVTOR_ASR_MODEL": str(data.parent / "no-model"),
        "POVTOR_OUTREACH_HOLIDAY_CALLS": "true",
        "POVTOR_OUTREACH_POLL_INTERVAL_S": "0.2",
        **settings,
    }


async def _start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "run",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_killed_worker_call_is_interrupted_and_its_recording_kept(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    await store.create_client(
        ClientInput(
            external_id="K-1",
            name="Пётр",
            phones=("+79161234567",),
            timezone=_zone_in_daytime(now),
        )
    )
    await store.add_order(
        OrderInput(
            external_id="KO-1",
            client_external_id="K-1",
            placed_at=now - timedelta(days=9),
            delivered_at=now - timedelta(days=5),
            amount=Decimal("990.00"),
        )
    )
    sipp = await start_sipp(tmp_path, None, builtin="uas")
    data = tmp_path / "data"
    incoming = data / "recordings" / "incoming"
    env = calling_worker_env(db_url, data, sipp.port, POVTOR_RECORDINGS_FLUSH_INTERVAL_S="0.2")
    worker = await _start_worker(env)
    try:
        # the robot is talking: a partial recording with some audio is on disk
        await wait_until(
            lambda: any(p.stat().st_size > 44 + 32000 for p in _parts(incoming)),
            90,
            "a call in progress with audio recorded",
        )
    finally:
        worker.kill()
        await worker.wait()
    (part,) = _parts(incoming)
    call_uuid = part.name.removesuffix(".wav.part")
    calls = CallStore(session_factory(engine))
    assert (await calls.get_call(call_uuid)).state is CallState.ACTIVE

    restarted = await _start_worker(env)
    try:
        assert restarted.stderr is not None
        async with asyncio.timeout(60):  # the worker's own word that it recovered at start
            line = b"-"
            while line and b"call recovery at start" not in line:
                line = await restarted.stderr.readline()
        assert (await calls.get_call(call_uuid)).state is CallState.INTERRUPTED
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(restarted.communicate(), timeout=60)
        await sipp.stop()
    assert restarted.returncode == 0, stderr.decode()[-3000:]

    (recording,) = await calls.recordings_of(call_uuid)
    path = Path(recording.uri.removeprefix("file://"))
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        robot, _client = deinterleave(wav.readframes(wav.getnframes()))
    samples = np.frombuffer(robot, dtype="<i2")
    assert len(samples) >= 8000  # at least a second of the call survived
    assert int(np.abs(samples).max()) > 1000
    assert _parts(incoming) == []
    assert len(sipp.received("INVITE")) == 1  # the client was dialled once for the attempt
