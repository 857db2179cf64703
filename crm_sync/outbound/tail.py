"""The tail of the timeline for one connector: the lease that lets one worker sync at a time,
the cursor, keyset reads of new events and the queueing of the ones to push."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.gaps import Snapshot
from crm_sync.outbound.tables import CrmCursorRow, CrmPushRow
from povtor.db import insert_ignore, table_of
from povtor.domain import TimelineEvent
from povtor.ports import TimelineFeed

PUSH = table_of(CrmPushRow)
CURSORS = table_of(CrmCursorRow)

PENDING, SENDING = "pending", "sending"


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


def _scanned(event: TimelineEvent) -> ScannedEvent:
    return ScannedEvent(event.id, event.client_id, event.kind.value, event.data)


class TimelineTail:
    """Reads the timeline through the :class:`TimelineFeed` port; owns only the push queue and
    the cursor."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], connector: str, feed: TimelineFeed
    ) -> None:
        self._sessions = sessions
        self.connector = connector
        self.feed = feed

    async def acquire(
        self, owner: str, now: datetime, lease: timedelta, *, backfill: bool
    ) -> int | None:
        """Take (or renew) the right to sync this connector; the cursor, or None when another
        worker holds it. The first time, the cursor starts at the newest event unless
        ``backfill`` (then at the beginning of the timeline)."""
        start = 0 if backfill else await self.feed.newest_id()
        async with self._sessions.begin() as session:
            conn = await session.connection()
            await conn.execute(
                insert_ignore(
                    conn,
                    CURSORS,
                    {"connector": self.connector, "last_event_id": start, "updated_at": now},
                    on=[CURSORS.c.connector],
                )
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
        page = await self.feed.page_after(after, limit)
        snapshot = Snapshot.parse(page.snapshot) if page.snapshot is not None else None
        return [_scanned(e) for e in page.events], snapshot

    async def rescan(self, ranges: Sequence[tuple[int, int]]) -> list[ScannedEvent]:
        """Events inside id ranges that were gaps at an earlier scan."""
        return [_scanned(e) for e in await self.feed.in_ranges(ranges)]

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
                    insert_ignore(conn, PUSH, on=[PUSH.c.connector, PUSH.c.event_id]),
                    rows,
                )
            if cursor is not None:
                await conn.execute(
                    update(CURSORS)
                    .where(c.connector == self.connector, c.last_event_id < cursor)
                    .values(last_event_id=cursor, updated_at=now)
                )
            return True
