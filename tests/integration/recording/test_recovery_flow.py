"""From the recorder to a linked recording, and after a worker was killed mid-call."""

from __future__ import annotations

import signal
import subprocess
import sys
import wave
from datetime import UTC, datetime
from pathlib import Path

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import OutcomeKind
from tests.unit.recording.frames import client_frame, robot_frame
from voice.call_records import CallState, StorageKind
from voice.call_store import CallStore
from voice.recording import CallRecorder, RecordingWriter
from voice.recording_archive import archive_recording, recover_after_restart
from voice.recording_wav import deinterleave
from voice.storage import LocalStorage, S3Storage

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
TARGET = "sip:+79161234567@trunk.example"


def _kill_writer_after(folder: Path, call_uuid: str, ticks: int) -> None:
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


def _channels(path: Path) -> tuple[bytes, bytes]:
    with wave.open(str(path), "rb") as wav:
        return deinterleave(wav.readframes(wav.getnframes()))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_finished_call_is_archived_under_its_date_and_linked(
    calls: CallStore, recordings_root: Path, writer: RecordingWriter
) -> None:
    incoming = recordings_root / "incoming"
    call = await calls.create_call("c-1", trunk="t", target=TARGET, worker_id="w", started_at=T0)
    rec = CallRecorder.open(incoming, "c-1", writer=writer)
    for n in range(60):
        rec.write_tick(robot_frame(n), client_frame(n))
    info = await rec.finish()

    record = await archive_recording(calls, LocalStorage(recordings_root), info, call)

    stored = recordings_root / "2026" / "05" / "04" / "c-1.wav"
    assert record.uri == stored.as_uri()
    assert (record.sha256, record.storage) == (info.sha256, StorageKind.LOCAL)
    assert _names(incoming) == []
    assert _channels(stored)[1] == b"".join(client_frame(n) for n in range(60))
    assert await calls.recordings_of("c-1") == [record]


async def test_killed_worker_call_is_interrupted_and_its_audio_archived(
    calls: CallStore,
    store: SqlHistoryStore,
    client_id: int,
    recordings_root: Path,
    writer: RecordingWriter,
) -> None:
    incoming = recordings_root / "incoming"
    await calls.create_call(
        "dead", trunk="t", target=TARGET, worker_id="w1", client_id=client_id, started_at=T0
    )
    _kill_writer_after(incoming, "dead", 88)
    await calls.create_call("live", trunk="t", target=TARGET, worker_id="w2", started_at=T0)
    live = CallRecorder.open(incoming, "live", writer=writer)
    live.write_tick(robot_frame(0), None)
    await live.drain()
    storage = LocalStorage(recordings_root)

    report = await recover_after_restart(calls, storage, incoming, worker_id="w1")

    assert [c.uuid for c in report.interrupted] == ["dead"]
    assert (await calls.get_call("dead")).state is CallState.INTERRUPTED
    [record] = report.archived
    assert record.duration_s == 88 * 0.02
    left, right = _channels(storage.path_of(record.uri))
    assert left == b"".join(robot_frame(n) for n in range(88))
    assert right == b"".join(client_frame(n) for n in range(88))
    assert await calls.recordings_of("dead") == [record]
    assert _names(incoming) == ["live.wav.part"]  # the other worker's live call is untouched
    [event] = await store.timeline(client_id)
    assert event.data["outcome"] == OutcomeKind.INTERRUPTED.value

    again = await recover_after_restart(calls, storage, incoming, worker_id="w1")
    assert (again.interrupted, again.archived) == ((), ())
    await live.finish()


async def test_crash_between_finish_and_archive_is_completed_on_restart(
    calls: CallStore, s3_storage: S3Storage, recordings_root: Path, writer: RecordingWriter
) -> None:
    incoming = recordings_root / "incoming"
    await calls.create_call("c-2", trunk="t", target=TARGET, worker_id="w1", started_at=T0)
    rec = CallRecorder.open(incoming, "c-2", writer=writer)
    rec.write_tick(robot_frame(1), client_frame(1))
    info = await rec.finish()  # ... and the worker dies before archiving
    await calls.finish_call("c-2", outcome=OutcomeKind.ANSWERED)
    await calls.create_call("orphan", trunk="t", target=TARGET, worker_id="w1")
    rec = CallRecorder.open(incoming, "stray", writer=writer)
    await rec.finish()  # a file with no call row is left for a human

    report = await recover_after_restart(calls, s3_storage, incoming, worker_id="w1")

    assert [c.uuid for c in report.interrupted] == ["orphan"]
    [record] = report.archived
    assert record.uri == "s3://povtor-recordings/2026/05/04/c-2.wav"
    assert (record.sha256, record.storage) == (info.sha256, StorageKind.S3)
    assert await s3_storage.exists(record.uri)
    assert report.left == ("stray.wav",)
    assert _names(incoming) == ["stray.wav"]
