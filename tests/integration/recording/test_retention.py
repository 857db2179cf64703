"""Recordings past the retention period are deleted from storage and marked, repeatably."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from voice.call_records import RecordingRecord, StorageKind
from voice.call_store import CallStore
from voice.recording import CallRecorder, RecordingWriter
from voice.recording_archive import archive_recording
from voice.retention import RetentionSweeper, SweepReport, sweep_recordings
from voice.storage import LocalStorage, RecordingStorage, S3Storage

TARGET = "sip:+79161234567@trunk.example"


async def _recorded(
    calls: CallStore, storage: RecordingStorage, folder: Path, uuid: str, writer: RecordingWriter
) -> RecordingRecord:
    call = await calls.create_call(uuid, trunk="t", target=TARGET, worker_id="w")
    rec = CallRecorder.open(folder, uuid, writer=writer)
    rec.write_tick(uuid.encode().ljust(320, b"\0"), None)  # distinct content per call
    return await archive_recording(calls, storage, await rec.finish(), call)


async def test_old_recordings_are_deleted_from_every_storage_and_marked(
    calls: CallStore, recordings_root: Path, s3_storage: S3Storage, writer: RecordingWriter
) -> None:
    local = LocalStorage(recordings_root)
    incoming = recordings_root / "incoming"
    on_disk = await _recorded(calls, local, incoming, "r-local", writer)
    in_s3 = await _recorded(calls, s3_storage, incoming, "r-s3", writer)
    storages: dict[StorageKind, RecordingStorage] = {
        StorageKind.LOCAL: local,
        StorageKind.S3: s3_storage,
    }
    later = on_disk.created_at + timedelta(days=10)

    assert await sweep_recordings(calls, storages, 30, now=later) == SweepReport()
    report = await sweep_recordings(calls, storages, 7, now=later)

    assert report == SweepReport(deleted=2)
    assert not await local.exists(on_disk.uri)
    assert not await s3_storage.exists(in_s3.uri)
    [row] = await calls.recordings_of("r-s3")
    assert row.deleted_at == later
    assert await sweep_recordings(calls, storages, 7, now=later) == SweepReport()


async def test_a_file_already_gone_is_still_marked_and_unknown_storage_is_skipped(
    calls: CallStore, recordings_root: Path, s3_storage: S3Storage, writer: RecordingWriter
) -> None:
    local = LocalStorage(recordings_root)
    gone = await _recorded(calls, local, recordings_root / "incoming", "gone", writer)
    await local.delete(gone.uri)
    await _recorded(calls, s3_storage, recordings_root / "incoming", "elsewhere", writer)
    later = gone.created_at + timedelta(days=2)

    report = await sweep_recordings(calls, {StorageKind.LOCAL: local}, 1, now=later)

    assert report == SweepReport(deleted=1, skipped=1)
    [row] = await calls.recordings_of("gone")
    assert row.deleted_at == later


async def test_zero_retention_keeps_everything(
    calls: CallStore, recordings_root: Path, writer: RecordingWriter
) -> None:
    local = LocalStorage(recordings_root)
    kept = await _recorded(calls, local, recordings_root / "incoming", "kept", writer)
    far = kept.created_at + timedelta(days=10_000)
    assert await sweep_recordings(calls, {StorageKind.LOCAL: local}, 0, now=far) == SweepReport()
    assert await local.exists(kept.uri)


class _SignallingStorage(LocalStorage):
    """A local storage that tells the test when it deleted something."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.deleted = asyncio.Event()

    async def delete(self, uri: str) -> None:
        await super().delete(uri)
        self.deleted.set()


async def test_sweeper_deletes_in_the_background_until_stopped(
    calls: CallStore, recordings_root: Path, writer: RecordingWriter
) -> None:
    storage = _SignallingStorage(recordings_root)
    old = await _recorded(calls, storage, recordings_root / "incoming", "old", writer)
    sweeper = RetentionSweeper(
        calls,
        {StorageKind.LOCAL: storage},
        retention_days=1,
        interval_s=3600,
        clock=lambda: old.created_at + timedelta(days=2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(sweeper.run(stop))
    try:
        await asyncio.wait_for(storage.deleted.wait(), timeout=10)
        stop.set()
        await asyncio.wait_for(task, timeout=10)  # wakes from its hour-long wait at once
    finally:
        task.cancel()
    assert sweeper.sweeps == 1
    [row] = await calls.recordings_of("old")
    assert row.deleted_at is not None
