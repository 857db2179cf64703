"""``ClientErasure`` of voice: a client's calls, their recordings (the files too, in the local
folder or the S3 bucket, with the copies fetched for the dashboard and any file left in the
incoming folder) and their transcripts.

Files go first, rows after: a file that cannot be deleted (a bucket that does not answer, a
recording in a storage this machine is not configured for) raises, and the rows that point to
it stay for the retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.db import execute_dml, table_of
from povtor.ports import ErasureSubject
from voice.asr_tables import TranscriptRow
from voice.call_records import StorageKind
from voice.recording import PART_SUFFIX
from voice.storage import RecordingStorage, StorageError
from voice.tables import CallRow, RecordingRow

CALLS = table_of(CallRow)
RECORDINGS = table_of(RecordingRow)
TRANSCRIPTS = table_of(TranscriptRow)
NATIONAL_DIGITS = 10  # the end of a number as any trunk dials it (+7 999..., 8 999..., 999...)


class VoiceErasure:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        storages: Mapping[StorageKind, RecordingStorage],
        *,
        incoming: Path,
        cache: Path,
    ) -> None:
        self._sessions = sessions
        self._storages = storages
        self._incoming = incoming
        self._cache = cache

    async def erase_clients(self, subjects: Sequence[ErasureSubject]) -> Mapping[str, int]:
        async with self._sessions() as session:
            calls = (
                await session.execute(select(CALLS.c.id, CALLS.c.uuid).where(_calls_of(subjects)))
            ).all()
            call_ids = [c.id for c in calls]
            recordings = (
                await session.execute(
                    select(RECORDINGS.c.uri, RECORDINGS.c.storage, RECORDINGS.c.sha256)
                    .where(RECORDINGS.c.call_id.in_(call_ids))
                    .order_by(RECORDINGS.c.id)
                )
            ).all()
        files = 0
        for recording in recordings:
            files += await self._delete_recording(
                recording.uri, recording.storage, recording.sha256
            )
        for call in calls:
            for name in (f"{call.uuid}.wav", f"{call.uuid}{PART_SUFFIX}"):
                files += await _unlink(self._incoming / name)
        hashes = [r.sha256 for r in recordings]
        async with self._sessions.begin() as session:
            transcripts = await execute_dml(
                session,
                delete(TRANSCRIPTS).where(
                    or_(TRANSCRIPTS.c.call_id.in_(call_ids), TRANSCRIPTS.c.sha256.in_(hashes))
                ),
            )
            rows = await execute_dml(
                session, delete(RECORDINGS).where(RECORDINGS.c.call_id.in_(call_ids))
            )
            gone = await execute_dml(session, delete(CALLS).where(CALLS.c.id.in_(call_ids)))
        return {
            "calls": int(gone.rowcount),
            "recordings": int(rows.rowcount),
            "files": files,
            "transcripts": int(transcripts.rowcount),
        }

    async def _delete_recording(self, uri: str, storage_kind: str, sha256: str) -> int:
        """The recording's file and the dashboard's fetched copy; how many files existed."""
        storage = self._storages.get(StorageKind(storage_kind))
        if storage is None:
            raise StorageError(
                f"a recording is in {storage_kind} storage, which is not configured here "
                "(POVTOR_RECORDINGS_S3_*): it cannot be deleted from this machine"
            )
        existed = await storage.exists(uri)
        await storage.delete(uri)
        return int(existed) + await _unlink(self._cache / f"{sha256}.wav")


async def _unlink(path: Path) -> int:
    def unlink() -> int:
        try:
            path.unlink()
        except FileNotFoundError:
            return 0
        return 1

    try:
        return await asyncio.to_thread(unlink)
    except OSError as err:
        raise StorageError(f"cannot delete {path.name}: {err}") from err


def _calls_of(subjects: Sequence[ErasureSubject]) -> ColumnElement[bool]:
    """The clients' calls, and the calls to or from their phones that no client was known
    for (the dialled or calling number is kept in ``target``)."""
    terms: list[ColumnElement[bool]] = [CALLS.c.client_id.in_([s.client_id for s in subjects])]
    for subject in subjects:
        for phone in subject.phones:
            digits = "".join(ch for ch in phone if ch.isdigit())[-NATIONAL_DIGITS:]
            if len(digits) == NATIONAL_DIGITS:
                terms.append(
                    and_(
                        CALLS.c.client_id.is_(None),
                        CALLS.c.target.contains(digits, autoescape=True),
                    )
                )
    return or_(*terms)
