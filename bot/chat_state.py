"""What the bot waits for in each chat (survey score, reason, complaint); survives restarts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.records import ChatState, ChatStep
from bot.tables import BotChatStateRow
from povtor.db import utcnow


class ChatStates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get_state(self, chat_id: int) -> ChatState | None:
        async with self._sessions() as session:
            row = await session.get(BotChatStateRow, chat_id)
            if row is None:
                return None
            return ChatState(
                chat_id=row.chat_id,
                step=ChatStep(row.state),
                client_id=row.client_id,
                attempt_id=row.attempt_id,
                message_id=row.message_id,
                score=row.score,
                data=dict(row.data or {}),
                updated_at=row.updated_at,
            )

    async def set_state(self, state: ChatState) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(BotChatStateRow).where(BotChatStateRow.chat_id == state.chat_id)
            )
            session.add(
                BotChatStateRow(
                    chat_id=state.chat_id,
                    state=state.step.value,
                    client_id=state.client_id,
                    attempt_id=state.attempt_id,
                    message_id=state.message_id,
                    score=state.score,
                    data=state.data or None,
                    updated_at=utcnow(),
                )
            )

    async def clear_state(self, chat_id: int, *, message_id: int | None = None) -> None:
        """Forget the chat's state (only if it is about ``message_id``, when given)."""
        query = delete(BotChatStateRow).where(BotChatStateRow.chat_id == chat_id)
        if message_id is not None:
            query = query.where(BotChatStateRow.message_id == message_id)
        async with self._sessions.begin() as session:
            await session.execute(query)

    async def stale_states(self, step: ChatStep, before: datetime) -> Sequence[ChatState]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(BotChatStateRow.chat_id).where(
                    BotChatStateRow.state == step.value, BotChatStateRow.updated_at < before
                )
            )
            chat_ids = list(rows)
        found = [await self.get_state(chat_id) for chat_id in chat_ids]
        return [s for s in found if s is not None]
