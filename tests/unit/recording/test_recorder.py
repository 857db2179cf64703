"""The stereo call recorder: header kept valid as it writes, channels by content, atomic finish."""

from __future__ import annotations

import hashlib
import os
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.recording.frames import client_frame, robot_frame, samples_le
from voice.recording import CallRecorder, RecordingError, RecordingWriter, recover_interrupted
from voice.recording_wav import deinterleave

RATE = 8000


@pytest.fixture
def writer() -> Iterator[RecordingWriter]:
    with RecordingWriter(threads=2) as w:
        yield w


def read_wav(path: Path) -> tuple[wave._wave_params, bytes]:
    with wave.open(str(path), "rb") as wav:
        return wav.getparams(), wav.readframes(wav.getnframes())


async def test_header_is_valid_after_every_flush(tmp_path: Path, writer: RecordingWriter) -> None:
    rec = CallRecorder.open(tmp_path, "c1", writer=writer, flush_interval_s=0.1)  # 5 ticks
    for n in range(23):
        rec.write_tick(robot_frame(n), client_frame(n))
        if n % 5 == 4:
            await rec.drain()
            params, frames = read_wav(rec.part_path)
            assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, RATE)
            assert params.nframes == (n + 1) * 160
            assert len(frames) == (n + 1) * 640
    await rec.drain()  # a partial flush (3 ticks) also leaves a valid header
    params, _ = read_wav(rec.part_path)
    assert params.nframes == 23 * 160


async def test_robot_is_left_and_client_is_right(tmp_path: Path, writer: RecordingWriter) -> None:
    rec = CallRecorder.open(tmp_path, "c2", writer=writer)
    for n in range(120):
        rec.write_tick(robot_frame(n), client_frame(n))
    info = await rec.finish()
    params, frames = read_wav(info.path)
    assert params.nchannels == 2
    left, right = deinterleave(frames)
    assert left == b"".join(robot_frame(n) for n in range(120))
    assert right == b"".join(client_frame(n) for n in range(120))


async def test_many_recorders_on_one_writer_thread_each_get_their_own_ticks_in_order(
    tmp_path: Path,
) -> None:
    """Appends queued together run as one writer job: each file still gets its own frames,
    in order, whatever the interleaving of the recorders' flushes."""
    with RecordingWriter(threads=1) as one:
        recs = [
            CallRecorder.open(tmp_path, f"m{i}", writer=one, flush_interval_s=0.02 * (1 + i % 3))
            for i in range(12)
        ]
        for n in range(50):
            for i, rec in enumerate(recs):
                rec.write_tick(robot_frame(n + 1000 * i), client_frame(n + 1000 * i))
        infos = [await rec.finish() for rec in recs]
    for i, info in enumerate(infos):
        _, frames = read_wav(info.path)
        left, right = deinterleave(frames)
        assert left == b"".join(robot_frame(n + 1000 * i) for n in range(50))
        assert right == b"".join(client_frame(n + 1000 * i) for n in range(50))


async def test_a_recorder_opened_while_the_writer_is_busy_creates_its_file_before_writing(
    tmp_path: Path,
) -> None:
    """Appends of other calls queued while the writer thread is busy must not run the new
    recorder's first append before its file exists (that failed a call with EBADF)."""
    with RecordingWriter(threads=1) as one:
        busy = threading.Event()
        one.shard().executor.submit(busy.wait)  # the writer thread is held up
        first = CallRecorder.open(tmp_path, "early", writer=one, flush_interval_s=0.02)
        first.write_tick(robot_frame(0), client_frame(0))  # its append now waits in the queue
        late = CallRecorder.open(tmp_path, "late", writer=one, flush_interval_s=0.02)
        late.write_tick(robot_frame(1), client_frame(1))
        busy.set()
        infos = [await first.finish(), await late.finish()]
    for n, info in enumerate(infos):
        _, frames = read_wav(info.path)
        assert deinterleave(frames) == (robot_frame(n), client_frame(n))


async def test_missing_side_is_silence_and_short_frame_is_zero_padded(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    rec = CallRecorder.open(tmp_path, "c3", writer=writer)
    rec.write_tick(None, client_frame(0))
    rec.write_tick(robot_frame(1)[:100], None)
    info = await rec.finish()
    left, right = deinterleave(read_wav(info.path)[1])
    assert samples_le(left) == [0] * 160 + [1001] * 50 + [0] * 110
    assert samples_le(right) == [-1000] * 160 + [0] * 160


async def test_oversized_frame_is_refused(tmp_path: Path, writer: RecordingWriter) -> None:
    rec = CallRecorder.open(tmp_path, "c4", writer=writer)
    with pytest.raises(ValueError, match="at most 320"):
        rec.write_tick(bytes(322), None)
    await rec.discard()


async def test_finish_renames_atomically_and_checksums(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    rec = CallRecorder.open(tmp_path, "c5", writer=writer)
    for n in range(75):
        rec.write_tick(robot_frame(n), client_frame(n))
    info = await rec.finish()
    assert info.path == tmp_path / "c5.wav"
    assert not rec.part_path.exists()
    data = info.path.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size_bytes == len(data) == 44 + 75 * 640
    assert info.duration_s == pytest.approx(1.5)
    assert info.call_uuid == "c5"
    rec.write_tick(robot_frame(0), None)  # a late tick after hangup is ignored
    assert await rec.finish() == info
    assert info.path.read_bytes() == data


async def test_empty_recording_finishes_as_a_valid_wav(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    info = await CallRecorder.open(tmp_path, "c6", writer=writer).finish()
    params, frames = read_wav(info.path)
    assert params.nframes == 0
    assert frames == b""
    assert info.duration_s == 0


async def test_discard_removes_the_partial_file(tmp_path: Path, writer: RecordingWriter) -> None:
    rec = CallRecorder.open(tmp_path, "c7", writer=writer)
    rec.write_tick(robot_frame(0), None)
    await rec.drain()
    assert rec.part_path.exists()
    await rec.discard()
    assert os.listdir(tmp_path) == []


async def test_unwritable_folder_fails_on_finish(tmp_path: Path, writer: RecordingWriter) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rec = CallRecorder.open(blocker / "sub", "c8", writer=writer)
    rec.write_tick(robot_frame(0), None)
    with pytest.raises(RecordingError, match="c8"):
        await rec.finish()
    assert rec.failed


async def test_existing_recording_is_never_overwritten(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    (tmp_path / "c9.wav").write_bytes(b"keep")
    rec = CallRecorder.open(tmp_path, "c9", writer=writer)
    with pytest.raises(RecordingError):
        await rec.finish()
    assert (tmp_path / "c9.wav").read_bytes() == b"keep"


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b", "x" * 129])
def test_unsafe_call_uuid_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="call uuid"):
        CallRecorder.open(tmp_path, bad)


async def test_recovery_leaves_a_live_recording_alone(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    rec = CallRecorder.open(tmp_path, "live", writer=writer)
    rec.write_tick(robot_frame(0), client_frame(0))
    await rec.drain()
    assert recover_interrupted(tmp_path) == []
    assert rec.part_path.exists()
    info = await rec.finish()
    assert info.duration_s == pytest.approx(0.02)
