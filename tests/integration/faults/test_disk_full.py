"""The disk fills up while calls are recorded: a real small filesystem (tmpfs) holds the
recordings, and the phone (the demo's SIPp phones) answers and presses its key. The call's
outcome and what the client said are kept, the failure is on the health board (logged once,
not per call), the calls go on, and a freed disk records again."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.demo.phones import DemoPhones
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, OutcomeKind, Purpose
from povtor.health import HealthBoard, HealthState
from tests.integration.scenario.test_call_channel_sip import settings_for
from tests.integration.sip.conftest import trunk_for
from voice.call_channel import build_call_channel
from voice.engine import CallEngine
from voice.recording import CallRecorder, RecordingWriter

pytestmark = pytest.mark.sip

SIZE_KB = 48  # about 1.5 s of a stereo 8 kHz recording: every call outgrows it


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SIZE_KB: a real filesystem that answers ENOSPC when full."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_KB}k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _nps(n: int) -> tuple[Attempt, Client]:
    client = Client(id=n, external_id=f"c{n}", name="Иван", phones=(f"+797909909{n:02d}",))
    attempt = Attempt(
        id=n,
        client_id=n,
        purpose=Purpose.NPS,
        channel=ChannelKind.CALL,
        state=AttemptState.IN_PROGRESS,
        not_before=datetime.now(UTC),
        idempotency_key=f"nps:{n}",
    )
    return attempt, client


async def test_a_full_disk_loses_no_outcome_and_says_so_once(
    tmp_path: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="povtor.health")
    board = HealthBoard()
    settings = settings_for(tmp_path)
    outcomes = []
    with RecordingWriter(threads=1) as writer:

        def recorder(call_uuid: str) -> CallRecorder:
            return CallRecorder.open(small_disk, call_uuid, writer=writer)

        async with DemoPhones(tmp_path / "phones") as phones:
            trunk = trunk_for(int(phones.address.rsplit(":", 1)[1]))
            async with CallEngine(
                {trunk.name: trunk}, recorder_factory=recorder, health=board
            ) as engine:
                channel = build_call_channel(settings, engine, worker_id="w1")
                try:
                    for n in (1, 2):  # the disk fills during the first call
                        async with asyncio.timeout(90):
                            outcomes.append(await channel.execute(*_nps(n)))
                        assert board.components["recordings"].state is HealthState.DEGRADED
                    grown = await asyncio.create_subprocess_exec(  # the operator makes room
                        "mount", "-o", "remount,size=8m", str(small_disk)
                    )
                    assert await grown.wait() == 0
                    async with asyncio.timeout(90):
                        freed = await channel.execute(*_nps(3))
                finally:
                    channel.close()

    for outcome in outcomes:  # the call and the client's answer are kept
        assert outcome.kind is OutcomeKind.ANSWERED, outcome
        assert outcome.data["score"] == 9
        assert outcome.data["score_via"] == "keypad"
    said = [r.getMessage() for r in caplog.records if r.name == "povtor.health"]
    degraded = [m for m in said if m.startswith("recordings degraded")]
    assert degraded == [
        "recordings degraded: call recordings cannot be written: No space left on device"
    ], said
    assert freed.kind is OutcomeKind.ANSWERED
    assert board.components["recordings"].state is HealthState.OK
    assert "recordings recovered" in said
    wavs = await asyncio.to_thread(lambda: list(small_disk.glob("*.wav")))
    assert len(wavs) == 1  # the third call is recorded in full
