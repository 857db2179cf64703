"""Messages the outbox could not deliver, as dead letters for the managers' page of all queues.

Not retryable from there: a message belongs to the execution that sent it, and sending it again
later is the contact policy's decision (see :mod:`bot.delivery`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.records import SendStatus
from bot.tables import BotOutboxRow
from povtor.db import table_of
from povtor.work import DeadLetter, WorkQueue, WorkTable

OUTBOX_WORK = WorkTable(
    table_of(BotOutboxRow),
    ready=(SendStatus.QUEUED.value,),
    claimed=SendStatus.QUEUED.value,  # sent inline by its execution: never claimed
    dead=SendStatus.FAILED.value,
    state="status",
    due_at="created_at",
    attempts="tries",
    error="error",
    owner=None,
    token=None,
    lease_until=None,
    updated_at=None,
)


class OutboxDeadLetters:
    name = "telegram"
    retryable = False

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._work = WorkQueue(OUTBOX_WORK)

    async def dead_letters(self, limit: int = 50) -> Sequence[DeadLetter]:
        async with self._sessions() as session:
            letters = await self._work.dead_letters(await session.connection(), limit=limit)
        return letters

    async def revive(self, ids: Sequence[int]) -> int:
        raise NotImplementedError("a message is sent again only by a new contact attempt")
