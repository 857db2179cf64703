"""``povtor recordings recover|sweep`` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voice.call_records import CallState
from voice.call_store import CallStore
from voice.recording_wav import wav_header

POVTOR = Path(sys.executable).with_name("povtor")


def _povtor(db_url: str, data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(data_dir),
        "POVTOR_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [str(POVTOR), "recordings", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, json.loads(lines[-1])


def _leave_part_file(folder: Path, call_uuid: str, data: bytes) -> None:
    folder.mkdir(parents=True)
    (folder / f"{call_uuid}.wav.part").write_bytes(wav_header(0) + data)


async def test_recover_marks_the_dead_workers_call_and_archives_its_file(
    calls: CallStore, db_url: str, tmp_path: Path
) -> None:
    started = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
    await calls.create_call(
        "dead-call", trunk="t", target="sip:1@x", worker_id="host:123", started_at=started
    )
    _leave_part_file(tmp_path / "recordings" / "incoming", "dead-call", bytes(range(200)) * 8)

    code, out = _povtor(db_url, tmp_path, "recover", "--worker-id", "host:123")

    assert code == 0
    stored = tmp_path / "recordings" / "2026" / "02" / "03" / "dead-call.wav"
    assert out == {"interrupted": ["dead-call"], "archived": [stored.as_uri()], "left": []}
    assert (await calls.get_call("dead-call")).state is CallState.INTERRUPTED
    [record] = await calls.recordings_of("dead-call")
    assert record.size_bytes == 44 + 1600
    assert _povtor(db_url, tmp_path, "sweep")[1] == {"deleted": 0, "failed": 0, "skipped": 0}
