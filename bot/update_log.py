"""Update ids already handled: each Telegram update is handled once (polling redelivery,
webhook retries), and forgotten again when its handling failed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.tables import BotUpdateRow
from povtor.db import dialect_insert, table_of, utcnow


class UpdateLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]  # Core for the hot paths

    async def claim_updates(self, update_ids: Sequence[int]) -> set[int]:
        """The ids among ``update_ids`` seen for the first time (one statement)."""
        if not update_ids:
            return set()
        now = utcnow()
        table = table_of(BotUpdateRow)
        async with self._engine.begin() as conn:
            stmt = (
                dialect_insert(conn, table).on_conflict_do_nothing().returning(table.c.update_id)
            )
            rows = [{"update_id": u, "received_at": now} for u in update_ids]
            return set((await conn.execute(stmt, rows)).scalars())

    async def release_updates(self, update_ids: Sequence[int]) -> None:
        if update_ids:
            async with self._sessions.begin() as session:
                await session.execute(
                    delete(BotUpdateRow).where(BotUpdateRow.update_id.in_(list(update_ids)))
                )
