"""Calls as managers see them: outcome, talk time, recording and the transcript as a dialogue.

Implements ``povtor.ports.CallHistory`` over the voice subsystem's own tables (calls,
recordings, transcripts), for the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.domain import OutcomeKind
from povtor.ports import CallView, DialogueLine
from voice.asr_tables import TranscriptRow
from voice.call_records import StorageKind
from voice.storage import LocalStorage, RecordingStorage, StorageError
from voice.tables import CallRow, RecordingRow
from voice.transcripts import segments_from_json

log = logging.getLogger(__name__)


def _talk_s(row: CallRow) -> float | None:
    if row.answered_at is None or row.ended_at is None:
        return None
    return round((row.ended_at - row.answered_at).total_seconds(), 1)


def _dialogue(transcript: TranscriptRow | None) -> tuple[DialogueLine, ...]:
    if transcript is None or transcript.status != "done":
        return ()
    lines = [
        DialogueLine(speaker=s.speaker, start=s.start, end=s.end, text=s.text)
        for s in segments_from_json(transcript.segments or [])
        if s.text
    ]
    return tuple(sorted(lines, key=lambda line: (line.start, line.speaker)))


class SqlCallHistory:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        storages: Mapping[StorageKind, RecordingStorage],
        cache_dir: Path,
    ) -> None:
        self._sessions = sessions
        self._storages = storages
        self._cache = cache_dir

    async def calls_for_client(self, client_id: int, limit: int = 20) -> Sequence[CallView]:
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(CallRow)
                    .where(CallRow.client_id == client_id)
                    .order_by(CallRow.started_at.desc(), CallRow.id.desc())
                    .limit(limit)
                )
            )
            return [await self._view(session, row) for row in rows]

    async def get_call(self, call_id: int) -> CallView | None:
        async with self._sessions() as session:
            row = await session.get(CallRow, call_id)
            return None if row is None else await self._view(session, row)

    async def recording_path(self, call_id: int) -> Path | None:
        async with self._sessions() as session:
            recording = await self._recording(session, call_id)
        if recording is None:
            return None
        storage = self._storages.get(StorageKind(recording.storage))
        if storage is None:
            return None
        if isinstance(storage, LocalStorage):
            try:
                path = storage.path_of(recording.uri)
            except StorageError:  # a row pointing outside the folder is served as missing
                log.warning("recording of call #%d is not in the recordings folder", call_id)
                return None
            return path if path.is_file() else None
        cached = self._cache / f"{recording.sha256}.wav"  # fetched once from remote storage
        if not cached.is_file():
            self._cache.mkdir(parents=True, exist_ok=True)
            await storage.get(recording.uri, cached)
        return cached

    async def _recording(self, session: AsyncSession, call_id: int) -> RecordingRow | None:
        return (
            await session.scalars(
                select(RecordingRow)
                .where(RecordingRow.call_id == call_id, RecordingRow.deleted_at.is_(None))
                .order_by(RecordingRow.id.desc())
                .limit(1)
            )
        ).first()

    async def _view(self, session: AsyncSession, row: CallRow) -> CallView:
        recording = await self._recording(session, row.id)
        transcript = None
        state = None
        if recording is not None:
            transcript = (
                await session.scalars(
                    select(TranscriptRow).where(TranscriptRow.sha256 == recording.sha256)
                )
            ).first()
            state = transcript.status if transcript is not None else "pending"
        return CallView(
            id=row.id,
            client_id=row.client_id,
            started_at=row.started_at,
            direction=row.direction,
            outcome=OutcomeKind(row.outcome) if row.outcome else None,
            talk_s=_talk_s(row),
            has_recording=recording is not None,
            transcript_state=state,
            dialogue=_dialogue(transcript),
        )
