"""Deep-link tokens once used: each is bound to the first chat that opens it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.tables import BotLinkTokenRow
from povtor.db import insert_ignore, table_of, utcnow


class LinkNonces:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def use_link_nonce(self, nonce: str, client_id: int, chat_id: int) -> bool:
        """Bind a token to the first chat that uses it; True for that chat only."""
        async with self._sessions.begin() as session:
            table = table_of(BotLinkTokenRow)
            values = {"nonce": nonce, "client_id": client_id, "chat_id": chat_id}
            await session.execute(insert_ignore(session, table, {**values, "used_at": utcnow()}))
            row = await session.get(BotLinkTokenRow, nonce)
            return row is not None and row.chat_id == chat_id and row.client_id == client_id
