"""The dashboard's view of calls: outcome, recording and the transcript as a dialogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import session_factory
from povtor.domain import OutcomeKind
from povtor.ports import Segment, Transcript
from voice.call_history import SqlCallHistory
from voice.call_records import StorageKind
from voice.call_store import CallStore
from voice.recording import CallRecorder, RecordingWriter
from voice.recording_archive import archive_recording
from voice.storage import LocalStorage
from voice.tables import RecordingRow
from voice.transcripts import TranscriptStore

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def _history(engine: AsyncEngine, root: Path) -> SqlCallHistory:
    storages = {StorageKind.LOCAL: LocalStorage(root)}
    return SqlCallHistory(session_factory(engine), storages, root / "cache")


async def _recorded_call(
    calls: CallStore, root: Path, writer: RecordingWriter, client_id: int, uuid: str
) -> tuple[int, str]:
    call = await calls.create_call(
        uuid,
        trunk="t",
        target="sip:+79161234567@pbx",
        worker_id="w",
        client_id=client_id,
        started_at=T0,
    )
    await calls.mark_answered(uuid, at=T0 + timedelta(seconds=3))
    rec = CallRecorder.open(root / "incoming", uuid, writer=writer)
    for _ in range(50):
        rec.write_tick(b"\x01\x00" * 160, b"\x02\x00" * 160)
    info = await rec.finish()
    await calls.finish_call(
        uuid, outcome=OutcomeKind.ANSWERED, ended_at=T0 + timedelta(seconds=45)
    )
    await archive_recording(calls, LocalStorage(root), info, call)
    return call.id, info.sha256


async def test_call_shows_outcome_talk_time_and_dialogue_in_time_order(
    engine: AsyncEngine,
    calls: CallStore,
    client_id: int,
    recordings_root: Path,
    writer: RecordingWriter,
) -> None:
    call_id, sha = await _recorded_call(calls, recordings_root, writer, client_id, "h-1")
    history = _history(engine, recordings_root)

    (pending,) = await history.calls_for_client(client_id)
    assert (pending.id, pending.transcript_state, pending.dialogue) == (call_id, "pending", ())

    transcript = Transcript(
        file="h-1.wav",
        duration_s=1.0,
        segments=(
            Segment(start=0.6, end=0.9, speaker="client", text="девять"),
            Segment(start=0.0, end=0.5, speaker="robot", text="оцените нас"),
        ),
    )
    await TranscriptStore(engine).save_done(sha, transcript)
    view = await history.get_call(call_id)
    assert view is not None
    assert view.outcome is OutcomeKind.ANSWERED
    assert view.talk_s == 42.0
    assert view.has_recording
    assert view.transcript_state == "done"
    assert [(line.speaker, line.text) for line in view.dialogue] == [
        ("robot", "оцените нас"),
        ("client", "девять"),
    ]
    path = await history.recording_path(call_id)
    assert path is not None
    assert path.is_file()
    assert path.is_relative_to(recordings_root)


async def test_call_without_recording_has_no_path_and_unknown_call_is_none(
    engine: AsyncEngine, calls: CallStore, client_id: int, recordings_root: Path
) -> None:
    call = await calls.create_call(
        "h-2", trunk="t", target="sip:x@pbx", worker_id="w", client_id=client_id, started_at=T0
    )
    await calls.finish_call("h-2", outcome=OutcomeKind.BUSY, sip_code=486)
    history = _history(engine, recordings_root)
    view = await history.get_call(call.id)
    assert view is not None
    assert (view.outcome, view.has_recording, view.transcript_state) == (
        OutcomeKind.BUSY,
        False,
        None,
    )
    assert await history.recording_path(call.id) is None
    assert await history.get_call(call.id + 1000) is None


async def test_a_recording_row_pointing_outside_the_folder_is_served_as_missing(
    engine: AsyncEngine,
    calls: CallStore,
    client_id: int,
    recordings_root: Path,
    writer: RecordingWriter,
    tmp_path: Path,
) -> None:
    call_id, _sha = await _recorded_call(calls, recordings_root, writer, client_id, "h-3")
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF")
    async with engine.begin() as conn:
        await conn.execute(
            update(RecordingRow)
            .where(RecordingRow.call_id == call_id)
            .values(uri=outside.as_uri())
        )
    history = _history(engine, recordings_root)
    assert await history.recording_path(call_id) is None
