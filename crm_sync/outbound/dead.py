"""Failed CRM pushes as dead letters for the managers' page of all queues."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.state import PushState
from povtor.db import utcnow
from povtor.work import DeadLetter


class CrmDeadLetters:
    """Pushes of one connector that failed (refused, or out of attempts); retryable."""

    name = "crm"
    retryable = True

    def __init__(self, sessions: async_sessionmaker[AsyncSession], connector: str) -> None:
        self._sessions = sessions
        self._state = PushState(sessions, connector)

    async def dead_letters(self, limit: int = 50) -> Sequence[DeadLetter]:
        return await self._state.dead_letters(limit)

    async def revive(self, ids: Sequence[int]) -> int:
        async with self._sessions.begin() as session:
            return await self._state.work.revive(
                await session.connection(), utcnow(), ids=ids, where=self._state.mine
            )
