"""The tail of the timeline for one connector: the lease that lets one worker sync at a time,
the cursor, keyset reads of new events and the queueing of the ones to push."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.gaps import Snapshot
from crm_sync.tables import CrmCursorRow, CrmPushRow, EventRow
from povtor.db import dialect_insert, table_of

PUSH = table_of(CrmPushRow)
CURSORS = table_of(CrmCursorRow)
EVENTS = table_of(EventRow)

PENDING, SENDING = "pending", "sending"
RESCAN_CHUNK = 300


@dataclass(frozen=True, slots=True)
class ScannedEvent:
    id: int
    client_id: int
    kind: str
    data: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Queued:
    """An event chosen for the CRM: (event id, client id, sync kind)."""

    event_id: int
    client_id: int
    kind: str


class TimelineTail:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], connector: str) -> None:
        self._sessions = sessions
        self.connector = connector

    async def acquire(
        self, owner: str, now: datetime, lease: timedelta, *, backfill: bool
    ) -> int | None:
        """Take (or renew) the right to sync this connector; the cursor, or None when another
        worker holds it. The first time, the cursor starts at the newest event unless
        ``backfill`` (then at the beginning of the timeline)."""
        async with self._sessions.begin() as session:
            conn = await session.connection()
            start = 0
            if not backfill:
                start = int(
                    await conn.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0))) or 0
                )
            await conn.execute(
                dialect_insert(conn, CURSORS)
                .values(connector=self.connector, last_event_id=start, updated_at=now)
                .on_conflict_do_nothing(index_elements=[CURSORS.c.connector])
            )
            c = CURSORS.c
            held_by = await conn.scalar(
                select(c.owner).where(c.connector == self.connector).with_for_update()
            )
            row = (
                await conn.execute(
                    update(CURSORS)
                    .where(
                        c.connector == self.connector,
                        or_(
                            c.owner.is_(None),
                            c.owner == owner,
                            c.lease_until.is_(None),
                            c.lease_until < now,
                        ),
                    )
                    .values(owner=owner, lease_until=now + lease, updated_at=now)
                    .returning(c.last_event_id)
                )
            ).first()
            if row is None:
                return None
            if held_by != owner:
                # Taken over (the last holder died or let go): what it left "sending" may or
                # may not have reached the CRM. Due now, looked up before anything is created.
                await conn.execute(
                    update(PUSH)
                    .where(PUSH.c.connector == self.connector, PUSH.c.state == SENDING)
                    .values(state=PENDING, in_doubt=True, next_try_at=now, updated_at=now)
                )
            return int(row[0])

    async def release(self, owner: str, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(CURSORS)
                .where(CURSORS.c.connector == self.connector, CURSORS.c.owner == owner)
                .values(owner=None, lease_until=None, updated_at=now)
            )

    async def scan(self, after: int, limit: int) -> tuple[list[ScannedEvent], Snapshot | None]:
        """Events after an id, in id order, and (PostgreSQL) the snapshot right after."""
        e = EVENTS.c
        query = (
            select(e.id, e.client_id, e.kind, e.data)
            .where(e.id > after)
            .order_by(e.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            snapshot = None
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                text_form = await session.scalar(select(func.pg_current_snapshot().cast(String)))
                snapshot = Snapshot.parse(str(text_form))
        return [ScannedEvent(r.id, r.client_id, r.kind, r.data) for r in rows], snapshot

    async def rescan(self, ranges: Sequence[tuple[int, int]]) -> list[ScannedEvent]:
        """Events inside id ranges that were gaps at an earlier scan (a few hundred ranges
        per query)."""
        e = EVENTS.c
        found: list[ScannedEvent] = []
        async with self._sessions() as session:
            for start in range(0, len(ranges), RESCAN_CHUNK):
                chunk = ranges[start : start + RESCAN_CHUNK]
                query = (
                    select(e.id, e.client_id, e.kind, e.data)
                    .where(or_(*(e.id.between(lo, hi) for lo, hi in chunk)))
                    .order_by(e.id)
                )
                rows = (await session.execute(query)).all()
                found += [ScannedEvent(r.id, r.client_id, r.kind, r.data) for r in rows]
        return found

    async def enqueue(
        self, owner: str, items: Sequence[Queued], cursor: int | None, now: datetime
    ) -> bool:
        """Queue events (each once per connector, whoever queues it first) and move the cursor
        forward, in one transaction. False when the lease was lost meanwhile."""
        async with self._sessions.begin() as session:
            conn = await session.connection()
            c = CURSORS.c
            held = await conn.scalar(
                select(c.owner).where(c.connector == self.connector).with_for_update()
            )
            if held != owner:
                return False
            if items:
                rows = [
                    {
                        "connector": self.connector,
                        "event_id": i.event_id,
                        "client_id": i.client_id,
                        "kind": i.kind,
                        "state": PENDING,
                        "attempts": 0,
                        "in_doubt": False,
                        "next_try_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in items
                ]
                await conn.execute(
                    dialect_insert(conn, PUSH).on_conflict_do_nothing(
                        index_elements=[PUSH.c.connector, PUSH.c.event_id]
                    ),
                    rows,
                )
            if cursor is not None:
                await conn.execute(
                    update(CURSORS)
                    .where(c.connector == self.connector, c.last_event_id < cursor)
                    .values(last_event_id=cursor, updated_at=now)
                )
            return True
