"""The bot's outbox table: every message owed to someone, queued, marked sent or failed.

Kept as one block (moved unchanged from the former catch-all repository) so that the outbox can
move onto the shared durable-work mechanism in one step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.records import OutboxMessage, SendStatus
from bot.tables import BotOutboxRow
from povtor.db import insert_ignore, table_of, utcnow


def _outbox(row: Any) -> OutboxMessage:
    """From an ORM row or a Core row of ``bot_outbox``."""
    return OutboxMessage(
        id=row.id,
        chat_id=row.chat_id,
        client_id=row.client_id,
        attempt_id=row.attempt_id,
        purpose=row.purpose,
        text=row.text,
        status=SendStatus(row.status),
        message_id=row.message_id,
        tries=row.tries,
        error=row.error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


class OutboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]  # Core for the hot paths

    async def add_outbox(
        self,
        *,
        chat_id: int,
        purpose: str,
        text: str,
        client_id: int | None = None,
        attempt_id: int | None = None,
        dedup_key: str | None = None,
    ) -> OutboxMessage:
        """Queue a message; with a dedup key, the existing message if it was queued before."""
        values = {
            "chat_id": chat_id,
            "client_id": client_id,
            "attempt_id": attempt_id,
            "purpose": purpose,
            "text": text,
            "status": SendStatus.QUEUED.value,
            "tries": 0,
            "dedup_key": dedup_key,
            "created_at": utcnow(),
        }
        async with self._sessions.begin() as session:
            if dedup_key is None:
                new = BotOutboxRow(**values)
                session.add(new)
                await session.flush()
                return _outbox(new)
            table = table_of(BotOutboxRow)
            inserted = await session.execute(
                insert_ignore(session, table, values).returning(*table.c)
            )
            row = inserted.first()
            if row is None:  # queued before under this key
                query = select(*table.c).where(table.c.dedup_key == dedup_key)
                row = (await session.execute(query)).one()
                return dataclasses.replace(_outbox(row), resumed=True)
            return _outbox(row)

    async def get_outbox(self, outbox_id: int) -> OutboxMessage | None:
        async with self._sessions() as session:
            row = await session.get(BotOutboxRow, outbox_id)
            return None if row is None else _outbox(row)

    async def start_send(self, outbox_id: int) -> None:
        """Counts a send as started (``tries``) before its request goes out: a message queued
        by an execution that stopped is in doubt only when this was recorded."""
        table = table_of(BotOutboxRow)
        async with self._sessions.begin() as session:
            await session.execute(
                update(table).where(table.c.id == outbox_id).values(tries=table.c.tries + 1)
            )

    async def mark_outbox(
        self,
        outbox_id: int,
        status: SendStatus,
        *,
        message_id: int | None = None,
        error: str | None = None,
        tries: int = 1,
    ) -> OutboxMessage:
        """The message's new status; returns it as stored (raises LookupError if unknown)."""
        values: dict[str, Any] = {"status": status.value, "tries": tries, "error": error}
        if message_id is not None:
            values["message_id"] = message_id
        if status is SendStatus.SENT:
            values["sent_at"] = utcnow()
        table = table_of(BotOutboxRow)
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(table)
                    .where(table.c.id == outbox_id)
                    .values(**values)
                    .returning(*table.c)
                )
            ).first()
        if row is None:
            raise LookupError(f"outbox message #{outbox_id} not found")
        return _outbox(row)

    async def outbox_counts(self) -> dict[str, int]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(BotOutboxRow.status, func.count()).group_by(BotOutboxRow.status)
            )
            return {status: count for status, count in rows.tuples()}

    async def get_outboxes(self, outbox_ids: Sequence[int]) -> dict[int, OutboxMessage]:
        if not outbox_ids:
            return {}
        table = table_of(BotOutboxRow)
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(table).where(table.c.id.in_(set(outbox_ids))))
            return {r.id: _outbox(r) for r in rows}
