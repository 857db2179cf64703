"""The bot's own state in its own tables: one short transaction per call (SQLite-friendly)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.records import (
    Alert,
    AlertStatus,
    ChatState,
    ChatStep,
    Manager,
    OutboxMessage,
    SendStatus,
)
from bot.tables import (
    BotAlertRow,
    BotChatStateRow,
    BotInviteRow,
    BotLinkTokenRow,
    BotManagerRow,
    BotOutboxRow,
    BotPressRow,
    BotUpdateRow,
)
from bot.tokens import invite_hash, make_invite_code
from povtor.db import dialect_insert, insert_ignore, table_of, utcnow


def _affected(result: Any) -> bool:
    """Whether a write changed a row (``CursorResult.rowcount``)."""
    return bool(getattr(result, "rowcount", 0))


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


def _alert(row: BotAlertRow) -> Alert:
    return Alert(
        id=row.id,
        client_id=row.client_id,
        kind=row.kind,
        task_id=row.task_id,
        status=AlertStatus(row.status),
        taken_by=row.taken_by,
        text=row.text,
        created_at=row.created_at,
    )


def _manager(row: BotManagerRow) -> Manager:
    return Manager(id=row.id, chat_id=row.chat_id, name=row.name, active=row.active)


class BotRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]  # Core for the hot paths

    # -- updates and link tokens -------------------------------------------------------------

    async def claim_update(self, update_id: int) -> bool:
        """True the first time an update id is seen."""
        async with self._sessions.begin() as session:
            table = table_of(BotUpdateRow)
            stmt = insert_ignore(session, table, {"update_id": update_id, "received_at": utcnow()})
            result = await session.execute(stmt)
            return _affected(result)

    async def release_update(self, update_id: int) -> None:
        """Forget an update whose handling failed, so a redelivery is handled again."""
        async with self._sessions.begin() as session:
            await session.execute(delete(BotUpdateRow).where(BotUpdateRow.update_id == update_id))

    async def use_link_nonce(self, nonce: str, client_id: int, chat_id: int) -> bool:
        """Bind a token to the first chat that uses it; True for that chat only."""
        async with self._sessions.begin() as session:
            table = table_of(BotLinkTokenRow)
            values = {"nonce": nonce, "client_id": client_id, "chat_id": chat_id}
            await session.execute(insert_ignore(session, table, {**values, "used_at": utcnow()}))
            row = await session.get(BotLinkTokenRow, nonce)
            return row is not None and row.chat_id == chat_id and row.client_id == client_id

    # -- managers ----------------------------------------------------------------------------

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

    # -- chat state --------------------------------------------------------------------------

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

    # -- outbox ------------------------------------------------------------------------------

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

    # -- presses and alerts ------------------------------------------------------------------

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

    async def get_outboxes(self, outbox_ids: Sequence[int]) -> dict[int, OutboxMessage]:
        if not outbox_ids:
            return {}
        table = table_of(BotOutboxRow)
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(table).where(table.c.id.in_(set(outbox_ids))))
            return {r.id: _outbox(r) for r in rows}

    async def create_alert(
        self, *, client_id: int, kind: str, text: str, dedup_key: str, task_id: int | None
    ) -> tuple[Alert, bool]:
        """The alert and whether it is new (False when the same answer alerted before)."""
        now = utcnow()
        values = {
            "client_id": client_id,
            "kind": kind,
            "task_id": task_id,
            "status": AlertStatus.OPEN.value,
            "taken_by": None,
            "text": text,
            "dedup_key": dedup_key,
            "created_at": now,
            "updated_at": now,
        }
        async with self._sessions.begin() as session:
            table = table_of(BotAlertRow)
            result = await session.execute(insert_ignore(session, table, values))
            query = select(BotAlertRow).where(BotAlertRow.dedup_key == dedup_key)
            return _alert((await session.scalars(query)).one()), _affected(result)

    async def get_alert(self, alert_id: int) -> Alert | None:
        async with self._sessions() as session:
            row = await session.get(BotAlertRow, alert_id)
            return None if row is None else _alert(row)

    async def move_alert(
        self, alert_id: int, status: AlertStatus, manager: str, *, only_from: AlertStatus | None
    ) -> bool:
        """Change an alert's status; with ``only_from``, only if it is in that status now."""
        query = update(BotAlertRow).where(BotAlertRow.id == alert_id)
        if only_from is not None:
            query = query.where(BotAlertRow.status == only_from.value)
        async with self._sessions.begin() as session:
            result = await session.execute(
                query.values(status=status.value, taken_by=manager, updated_at=utcnow())
            )
            return _affected(result)

    async def alerts_since(self, since: datetime, limit: int = 10) -> Sequence[Alert]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(BotAlertRow)
                .where(BotAlertRow.created_at >= since)
                .order_by(BotAlertRow.id.desc())
                .limit(limit)
            )
            return [_alert(r) for r in rows]

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
