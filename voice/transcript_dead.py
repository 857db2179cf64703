"""Failed transcripts as dead letters for the managers' page of all queues.

Not retryable from there: a failed transcript is rerun with ``povtor transcribe``, which reads
the audio again (see :mod:`voice.asr_worker` for why transcription has no claim table)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.db import table_of
from povtor.work import DeadLetter, WorkQueue, WorkTable
from voice.asr_tables import TranscriptRow
from voice.transcripts import DONE, FAILED

TRANSCRIPT_WORK = WorkTable(
    table_of(TranscriptRow),
    ready=(),
    claimed=DONE,  # written once per file by the transcriber: never claimed
    dead=FAILED,
    state="status",
    due_at="created_at",
    attempts=None,
    error="error",
    owner=None,
    token=None,
    lease_until=None,
)


class TranscriptDeadLetters:
    name = "transcripts"
    retryable = False

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._work = WorkQueue(TRANSCRIPT_WORK)

    async def dead_letters(self, limit: int = 50) -> Sequence[DeadLetter]:
        async with self._sessions() as session:
            letters = await self._work.dead_letters(await session.connection(), limit=limit)
        return letters

    async def revive(self, ids: Sequence[int]) -> int:
        raise NotImplementedError("a failed transcript is rerun with povtor transcribe")
