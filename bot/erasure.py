"""``ClientErasure`` of the bot: a client's chats as the bot knows them (link tokens, what the
bot waits for there), every message to or about the client (the client's own, the managers'
alerts naming it) with their button presses, and the alerts themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.tables import (
    BotAlertRow,
    BotFsmRow,
    BotLinkTokenRow,
    BotManagerRow,
    BotOutboxRow,
    BotPressRow,
)
from povtor.db import execute_dml, table_of
from povtor.ports import ErasureSubject

ALERTS = table_of(BotAlertRow)
FSM = table_of(BotFsmRow)
LINKS = table_of(BotLinkTokenRow)
MANAGERS = table_of(BotManagerRow)
OUTBOX = table_of(BotOutboxRow)
PRESSES = table_of(BotPressRow)


class BotErasure:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def erase_clients(self, subjects: Sequence[ErasureSubject]) -> Mapping[str, int]:
        """One transaction. A chat that is also a manager's keeps the manager's own state."""
        ids = [s.client_id for s in subjects]
        if not ids:
            return {"messages": 0, "presses": 0, "links": 0, "chat_states": 0, "alerts": 0}
        async with self._sessions.begin() as session:
            chats = await self._chats(session, ids, subjects)
            alerts = list(
                await session.scalars(select(ALERTS.c.id).where(ALERTS.c.client_id.in_(ids)))
            )
            about: list[ColumnElement[bool]] = [OUTBOX.c.client_id.in_(ids)]
            if chats:
                about.append(OUTBOX.c.chat_id.in_(chats))
            about += [OUTBOX.c.dedup_key.startswith(f"alert:{a}:") for a in alerts]
            outbox = list(await session.scalars(select(OUTBOX.c.id).where(or_(*about))))
            presses: list[ColumnElement[bool]] = (
                [PRESSES.c.outbox_id.in_(outbox)] if outbox else []
            )
            if chats:
                presses.append(PRESSES.c.chat_id.in_(chats))
            links: list[ColumnElement[bool]] = [LINKS.c.client_id.in_(ids)]
            if chats:
                links.append(LINKS.c.chat_id.in_(chats))
            removed = {
                "presses": await _delete(session, PRESSES, presses),
                "messages": await _delete(session, OUTBOX, [OUTBOX.c.id.in_(outbox)]),
                "links": await _delete(session, LINKS, links),
                "chat_states": await _delete(
                    session, FSM, [FSM.c.chat_id.in_(chats)] if chats else []
                ),
                "alerts": await _delete(session, ALERTS, [ALERTS.c.id.in_(alerts)]),
            }
        return removed

    async def _chats(
        self, session: AsyncSession, ids: list[int], subjects: Sequence[ErasureSubject]
    ) -> list[int]:
        """The clients' chats: linked in the store, bound by a link token, or written to;
        managers' chats left out."""
        chats = {s.chat_id for s in subjects if s.chat_id is not None}
        chats.update(
            await session.scalars(select(LINKS.c.chat_id).where(LINKS.c.client_id.in_(ids)))
        )
        chats.update(
            await session.scalars(
                select(OUTBOX.c.chat_id).where(OUTBOX.c.client_id.in_(ids)).distinct()
            )
        )
        if not chats:
            return []
        managers = set(
            await session.scalars(select(MANAGERS.c.chat_id).where(MANAGERS.c.chat_id.in_(chats)))
        )
        return sorted(chats - managers)


async def _delete(session: AsyncSession, table: Table, where: list[ColumnElement[bool]]) -> int:
    if not where:
        return 0
    result = await execute_dml(session, delete(table).where(or_(*where)))
    return int(result.rowcount)
