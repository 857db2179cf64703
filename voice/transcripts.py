"""The store of transcripts: one row per audio file (by sha256), written in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from povtor.db import session_factory, utcnow
from povtor.errors import StoreError
from povtor.ports import Segment, Transcript, Word
from voice.asr_tables import TranscriptRow

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    id: int
    sha256: str
    file_path: str
    status: str
    duration_s: float
    text: str
    segments: tuple[Segment, ...]
    error: str | None
    model: str | None
    call_id: int | None
    recording_ref: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.status == DONE

    def transcript(self) -> Transcript:
        return Transcript(file=self.file_path, duration_s=self.duration_s, segments=self.segments)


def segments_to_json(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    return [
        {
            "start": s.start,
            "end": s.end,
            "speaker": s.speaker,
            "text": s.text,
            "words": [
                {"word": w.word, "start": w.start, "end": w.end, "conf": w.conf} for w in s.words
            ],
        }
        for s in segments
    ]


def segments_from_json(data: Iterable[dict[str, Any]]) -> tuple[Segment, ...]:
    return tuple(
        Segment(
            start=float(s["start"]),
            end=float(s["end"]),
            speaker=str(s["speaker"]),
            text=str(s["text"]),
            words=tuple(
                Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w["conf"]))
                for w in s.get("words", ())
            ),
        )
        for s in data
    )


def _to_stored(row: TranscriptRow) -> StoredTranscript:
    return StoredTranscript(
        id=row.id,
        sha256=row.sha256,
        file_path=row.file_path,
        status=row.status,
        duration_s=row.duration_s,
        text=row.text,
        segments=segments_from_json(row.segments or ()),
        error=row.error,
        model=row.model,
        call_id=row.call_id,
        recording_ref=row.recording_ref,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class TranscriptStore:
    """Transcripts in the history store database.

    A done row is final: saving again for the same sha256 changes nothing (exactly once).
    A failed row may be replaced by a later attempt, done or failed.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    async def get(self, sha256: str) -> StoredTranscript | None:
        try:
            async with self._sessions() as session:
                row = await session.scalar(
                    select(TranscriptRow).where(TranscriptRow.sha256 == sha256)
                )
                return _to_stored(row) if row is not None else None
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read transcripts: {err}") from err

    async def get_by_path(self, file_path: str) -> StoredTranscript | None:
        """The latest transcript stored for a file path (a path may be rewritten over time)."""
        try:
            async with self._sessions() as session:
                row = await session.scalar(
                    select(TranscriptRow)
                    .where(TranscriptRow.file_path == file_path)
                    .order_by(TranscriptRow.updated_at.desc(), TranscriptRow.id.desc())
                    .limit(1)
                )
                return _to_stored(row) if row is not None else None
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read transcripts: {err}") from err

    async def statuses(self, hashes: Sequence[str]) -> dict[str, str]:
        """The status of every given sha256 that has a row."""
        found: dict[str, str] = {}
        try:
            async with self._sessions() as session:
                for start in range(0, len(hashes), 500):
                    chunk = list(hashes[start : start + 500])
                    rows = await session.execute(
                        select(TranscriptRow.sha256, TranscriptRow.status).where(
                            TranscriptRow.sha256.in_(chunk)
                        )
                    )
                    found.update({sha: status for sha, status in rows.tuples()})
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read transcripts: {err}") from err
        return found

    async def count(self, status: str | None = None) -> int:
        async with self._sessions() as session:
            query = select(func.count()).select_from(TranscriptRow)
            if status is not None:
                query = query.where(TranscriptRow.status == status)
            return int(await session.scalar(query) or 0)

    async def save_done(
        self,
        sha256: str,
        transcript: Transcript,
        *,
        model: str | None = None,
        recording_ref: str | None = None,
    ) -> StoredTranscript:
        return await self._save(
            sha256,
            file_path=transcript.file,
            status=DONE,
            duration_s=transcript.duration_s,
            text=transcript.text,
            segments=segments_to_json(transcript.segments),
            error=None,
            model=model,
            recording_ref=recording_ref,
        )

    async def save_failed(
        self,
        sha256: str,
        file_path: str,
        reason: str,
        *,
        duration_s: float = 0.0,
        model: str | None = None,
        recording_ref: str | None = None,
    ) -> StoredTranscript:
        return await self._save(
            sha256,
            file_path=file_path,
            status=FAILED,
            duration_s=duration_s,
            text="",
            segments=[],
            error=reason,
            model=model,
            recording_ref=recording_ref,
        )

    async def _save(self, sha256: str, **values: Any) -> StoredTranscript:
        try:
            return await self._save_once(sha256, values)
        except IntegrityError:
            # another writer inserted the same file between our SELECT and INSERT: keep theirs
            # unless theirs failed, which one more pass replaces
            return await self._save_once(sha256, values)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot save transcript: {err}") from err

    async def _save_once(self, sha256: str, values: dict[str, Any]) -> StoredTranscript:
        now = utcnow()
        async with self._sessions() as session, session.begin():
            row = await session.scalar(
                select(TranscriptRow).where(TranscriptRow.sha256 == sha256).with_for_update()
            )
            if row is None:
                row = TranscriptRow(sha256=sha256, created_at=now, updated_at=now, **values)
                session.add(row)
            elif row.status != DONE:
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = now
            else:
                log.debug("transcript %s already done; keeping it", sha256[:12])
            await session.flush()
            return _to_stored(row)
