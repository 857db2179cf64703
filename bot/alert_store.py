"""Detractor and complaint alerts for managers, each raised once per answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.records import Alert, AlertStatus
from bot.tables import BotAlertRow
from povtor.db import insert_ignore, table_of, utcnow


def _affected(result: Any) -> bool:
    """Whether a write changed a row (``CursorResult.rowcount``)."""
    return bool(getattr(result, "rowcount", 0))


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


class AlertStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

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
