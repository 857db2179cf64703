"""Managers of the bot and the one-time invites that make a chat a manager's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.records import Manager
from bot.tables import BotInviteRow, BotManagerRow
from bot.tokens import invite_hash, make_invite_code
from povtor.db import utcnow


def _manager(row: BotManagerRow) -> Manager:
    return Manager(id=row.id, chat_id=row.chat_id, name=row.name, active=row.active)


class ManagerStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_invite(self, name: str, ttl: timedelta) -> str:
        code = make_invite_code()
        now = utcnow()
        async with self._sessions.begin() as session:
            session.add(
                BotInviteRow(
                    code_hash=invite_hash(code),
                    name=name,
                    created_at=now,
                    expires_at=now + ttl,
                    used_at=None,
                    used_by_chat=None,
                )
            )
        return code

    async def use_invite(self, code: str, chat_id: int, fallback_name: str) -> Manager | None:
        now = utcnow()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(BotInviteRow)
                .where(
                    BotInviteRow.code_hash == invite_hash(code),
                    BotInviteRow.used_at.is_(None),
                    BotInviteRow.expires_at > now,
                )
                .values(used_at=now, used_by_chat=chat_id)
                .returning(BotInviteRow.name)
            )
            invited = result.first()
            if invited is None:
                return None
            name = invited[0] or fallback_name
            row = (
                await session.scalars(
                    select(BotManagerRow).where(BotManagerRow.chat_id == chat_id)
                )
            ).first()
            if row is None:
                row = BotManagerRow(chat_id=chat_id, name=name, active=True, created_at=now)
                session.add(row)
            else:
                row.name, row.active = name, True
            await session.flush()
            return _manager(row)

    async def managers(self) -> Sequence[Manager]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(BotManagerRow)
                .where(BotManagerRow.active.is_(True))
                .order_by(BotManagerRow.id)
            )
            return [_manager(r) for r in rows]

    async def manager_by_chat(self, chat_id: int) -> Manager | None:
        async with self._sessions() as session:
            row = (
                await session.scalars(
                    select(BotManagerRow).where(
                        BotManagerRow.chat_id == chat_id, BotManagerRow.active.is_(True)
                    )
                )
            ).first()
            return None if row is None else _manager(row)
