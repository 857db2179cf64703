"""Button presses, recorded once per (message, button group): the first press counts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.tables import BotPressRow
from povtor.db import dialect_insert, table_of, utcnow


class PressStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]  # Core for the hot paths

    async def record_press(
        self, outbox_id: int, slot: str, action: str, chat_id: int, callback_query_id: str
    ) -> bool:
        """True for the press that counts: the first one of this button group on this message
        (also when the same callback query is handled again after a failure)."""
        return bool(
            await self.record_presses([(outbox_id, slot, action, chat_id, callback_query_id)])
        )

    async def record_presses(self, presses: Sequence[tuple[int, str, str, int, str]]) -> set[str]:
        """Record (outbox_id, slot, action, chat_id, callback_query_id) presses in one go;
        returns the callback query ids that count (first per message and slot)."""
        if not presses:
            return set()
        now = utcnow()
        rows = [
            {
                "outbox_id": outbox_id,
                "slot": slot,
                "action": action,
                "chat_id": chat_id,
                "callback_query_id": query_id,
                "pressed_at": now,
            }
            for outbox_id, slot, action, chat_id, query_id in presses
        ]
        table = table_of(BotPressRow)
        query_ids = {r["callback_query_id"] for r in rows}
        async with self._engine.begin() as conn:
            stmt = (
                dialect_insert(conn, table)
                .on_conflict_do_nothing()
                .returning(table.c.callback_query_id)
            )
            winners = set((await conn.execute(stmt, rows)).scalars())
            if len(winners) < len(query_ids):  # a query handled again after a failure
                again = await conn.execute(
                    select(table.c.callback_query_id).where(
                        table.c.callback_query_id.in_(list(query_ids - winners))
                    )
                )
                winners.update(again.scalars())
            return winners
