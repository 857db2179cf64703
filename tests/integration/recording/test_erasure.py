"""Voice's part of erasing a client (152-FZ): its calls and the calls to or from its phone,
their recordings in every storage (the S3 bucket too) and transcripts go; a recording in a
storage this machine is not configured for stops the erasure with the rows left for a retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import session_factory
from povtor.ports import ErasureSubject
from voice.call_records import RecordingRecord, StorageKind
from voice.call_store import CallStore
from voice.erasure import VoiceErasure
from voice.recording import CallRecorder, RecordingWriter
from voice.recording_archive import archive_recording
from voice.storage import LocalStorage, RecordingStorage, S3Storage, StorageError

PHONE = "+79161234567"


async def _recorded(
    calls: CallStore,
    storage: RecordingStorage,
    folder: Path,
    uuid: str,
    writer: RecordingWriter,
    *,
    target: str,
    client_id: int | None = None,
) -> RecordingRecord:
    call = await calls.create_call(
        uuid, trunk="t", target=target, worker_id="w", client_id=client_id
    )
    rec = CallRecorder.open(folder, uuid, writer=writer)
    rec.write_tick(uuid.encode().ljust(320, b"\0"), None)
    return await archive_recording(calls, storage, await rec.finish(), call)


async def test_the_clients_calls_and_recordings_go_from_disk_and_bucket_others_stay(
    engine: AsyncEngine,
    calls: CallStore,
    client_id: int,
    recordings_root: Path,
    s3_storage: S3Storage,
    writer: RecordingWriter,
    tmp_path: Path,
) -> None:
    local = LocalStorage(recordings_root)
    incoming = recordings_root / "incoming"
    archived = await _recorded(
        calls, s3_storage, incoming, "c-s3", writer, target=f"sip:{PHONE}@t", client_id=client_id
    )
    unknown = await _recorded(  # an inbound call from its number, no client known then
        calls, local, incoming, "c-in", writer, target="sip:89161234567@t"
    )
    other = await _recorded(calls, local, incoming, "c-other", writer, target="sip:+79990001122@t")
    sessions = session_factory(engine)
    without_s3 = VoiceErasure(
        sessions, {StorageKind.LOCAL: local}, incoming=incoming, cache=tmp_path / "cache"
    )
    subject = ErasureSubject(client_id, (PHONE,))

    with pytest.raises(StorageError, match="s3 storage, which is not configured here"):
        await without_s3.erase_clients([subject])
    assert await s3_storage.exists(archived.uri)
    assert len(await calls.recordings_of("c-s3")) == 1

    everywhere = VoiceErasure(
        sessions,
        {StorageKind.LOCAL: local, StorageKind.S3: s3_storage},
        incoming=incoming,
        cache=tmp_path / "cache",
    )
    removed = await everywhere.erase_clients([subject])

    assert removed == {"calls": 2, "recordings": 2, "files": 2, "transcripts": 0}
    assert not await s3_storage.exists(archived.uri)
    assert not await local.exists(unknown.uri)
    assert await local.exists(other.uri)
    async with engine.connect() as conn:
        left = list(await conn.execute(text("SELECT uuid FROM calls ORDER BY uuid")))
    assert [r.uuid for r in left] == ["c-other"]
    assert await everywhere.erase_clients([subject]) == {
        "calls": 0,
        "recordings": 0,
        "files": 0,
        "transcripts": 0,
    }
