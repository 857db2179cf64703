"""The worker's background transcriber: finished recordings in the folder become transcripts."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.voice_asr.conftest import CallFile
from tests.integration.voice_asr.speech import CLIENT_LINES, say, write_wav
from voice.asr_batch import Batch, sha256_file
from voice.asr_worker import RecordingTranscriber
from voice.decode import DecodeOptions
from voice.transcribe import TranscriberPool
from voice.transcripts import TranscriptStore

pytestmark = pytest.mark.asr


@contextlib.asynccontextmanager
async def transcribing(
    folder: Path, store: TranscriptStore, pool: TranscriberPool
) -> AsyncIterator[RecordingTranscriber]:
    """The background transcriber running on ``folder``, after its first scan."""

    async def shared() -> TranscriberPool:
        return pool

    options = DecodeOptions(skip_robot=True)
    batch = Batch(store, shared, options=options, close_pool=False, retry_failed=False)
    worker = RecordingTranscriber(folder, batch, interval_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            await worker.scanned.wait()
        yield worker
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def next_scan(worker: RecordingTranscriber) -> None:
    worker.scanned.clear()
    worker.wake()
    async with asyncio.timeout(60):
        await worker.scanned.wait()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_new_recordings_are_transcribed_once_and_partial_ones_ignored(
    asr_pool: TranscriberPool, call_file: CallFile, engine: AsyncEngine, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    (folder / "2026" / "11").mkdir(parents=True)
    first = folder / "2026" / "11" / "call-1.wav"
    shutil.copy(call_file.path, first)
    (folder / "2026" / "11" / "call-2.wav.part").write_bytes(b"RIFF still being written")
    store = TranscriptStore(engine)
    async with transcribing(folder, store, asr_pool) as worker:
        stored = await store.get(sha256_file(first))
        assert stored is not None
        assert stored.done
        assert stored.recording_ref == "2026/11/call-1.wav"
        assert {s.speaker for s in stored.segments} == {"client"}
        assert await store.count() == 1  # the .part file was left alone

        second = folder / "2026" / "11" / "call-3.wav"
        write_wav(second, [say(CLIENT_LINES[1])])
        await next_scan(worker)
        assert await store.count() == 2
        assert (await store.get(sha256_file(second))) is not None

        await next_scan(worker)  # nothing new: nothing decoded, nothing duplicated
        assert await store.count() == 2
    assert worker.scans == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_recordings_that_left_the_folder_are_forgotten(
    asr_pool: TranscriberPool, call_file: CallFile, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Retention deletes recordings and an upload to S3 removes the local copy: what the
    transcriber remembers as handled stays the size of the folder, however many calls pass."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    store = TranscriptStore(engine)
    async with transcribing(folder, store, asr_pool) as worker:
        kept = folder / "kept.wav"
        shutil.copy(call_file.path, kept)
        for day in range(20):  # each day three calls recorded, transcribed, then removed
            recordings = [folder / f"day-{day}-call-{n}.wav" for n in range(3)]
            for path in recordings:
                shutil.copy(call_file.path, path)
            await next_scan(worker)
            for path in recordings:
                path.unlink()
        await next_scan(worker)
        assert set(worker._seen) == {kept}
        assert await store.count() == 1  # one content: decoded once, the copies skipped
