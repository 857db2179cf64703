"""A worker killed mid-call keeps what was recorded; leftovers are finalised on restart."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tests.unit.recording.frames import client_frame, robot_frame
from voice.recording import recover_interrupted
from voice.recording_wav import deinterleave, wav_header

ROOT = Path(__file__).resolve().parents[3]


def _run_and_kill(folder: Path, call_uuid: str, ticks: int) -> None:
    """Start the writer in a real process, wait for its 'ready' line, SIGKILL it."""
    command = [sys.executable, "-m", "tests.unit.recording.killed_writer", str(folder), call_uuid]
    with subprocess.Popen(
        [*command, str(ticks)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_killed_writer_leaves_a_readable_file_and_recovery_keeps_the_samples(
    tmp_path: Path,
) -> None:
    _run_and_kill(tmp_path, "killed", 137)
    part = tmp_path / "killed.wav.part"
    with wave.open(str(part), "rb") as wav:  # readable as it is, before any repair
        assert wav.getnframes() == 137 * 160

    [info] = recover_interrupted(tmp_path)

    assert not part.exists()
    assert info.path == tmp_path / "killed.wav"
    assert info.call_uuid == "killed"
    assert info.duration_s == pytest.approx(137 * 0.02)
    data = info.path.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size_bytes == len(data)
    with wave.open(str(info.path), "rb") as wav:
        left, right = deinterleave(wav.readframes(wav.getnframes()))
    assert left == b"".join(robot_frame(n) for n in range(137))
    assert right == b"".join(client_frame(n) for n in range(137))


def test_recovery_fixes_a_header_that_lags_the_data(tmp_path: Path) -> None:
    stereo = bytes(range(256)) * 10  # 2560 bytes = 640 sample pairs
    (tmp_path / "lag.wav.part").write_bytes(wav_header(0) + stereo + b"\x01\x02\x03")

    [info] = recover_interrupted(tmp_path)

    with wave.open(str(info.path), "rb") as wav:
        assert wav.getnframes() == 640
        assert wav.readframes(640) == stereo  # the cut-off partial sample pair is dropped
    assert info.size_bytes == 44 + 2560


def test_recovery_turns_a_file_cut_inside_the_header_into_an_empty_wav(tmp_path: Path) -> None:
    (tmp_path / "cut.wav.part").write_bytes(wav_header(0)[:10])
    [info] = recover_interrupted(tmp_path)
    with wave.open(str(info.path), "rb") as wav:
        assert wav.getnframes() == 0


def test_recovery_skips_foreign_files_and_other_calls(tmp_path: Path) -> None:
    (tmp_path / "junk.wav.part").write_bytes(b"this is not a wav file at all" * 3)
    (tmp_path / "other.wav.part").write_bytes(wav_header(0))
    (tmp_path / "mine.wav.part").write_bytes(wav_header(0) + bytes(8))

    recovered = recover_interrupted(tmp_path, call_uuids={"mine", "junk"})

    assert [r.call_uuid for r in recovered] == ["mine"]
    assert sorted(os.listdir(tmp_path)) == ["junk.wav.part", "mine.wav", "other.wav.part"]
    assert recover_interrupted(tmp_path / "missing") == []
