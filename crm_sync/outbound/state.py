"""Push state in the database: the push table, cached contacts, the status managers see.
Every change is one short transaction; every update names the state it expects.

The push table is a queue of the durable-work mechanism (:mod:`povtor.work`): "pending" waits,
"sending" is claimed, "failed" is the dead letter. It has no lease columns: one worker at a time
holds the connector (the cursor's lease, :mod:`crm_sync.outbound.tail`), so a push is claimed
by its state alone, one at a time just before its request (a crash then leaves only that one
"sending", looked up in the CRM before it is pushed again)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.options import SyncOptions
from crm_sync.outbound.tables import CrmContactRow, CrmCursorRow, CrmPushRow
from povtor.db import dialect_insert, table_of
from povtor.ports import TimelineFeed
from povtor.work import DeadLetter, WorkQueue, WorkTable

PUSH = table_of(CrmPushRow)
CURSORS = table_of(CrmCursorRow)
CONTACTS = table_of(CrmContactRow)

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
STATES = (PENDING, SENDING, DONE, FAILED)
WORK = WorkTable(
    PUSH,
    ready=(PENDING,),
    claimed=SENDING,
    dead=FAILED,
    due_at="next_try_at",
    owner=None,
    token=None,
    lease_until=None,
    order_by=("next_try_at", "event_id"),
    channel="crm_push",
)


@dataclass(frozen=True, slots=True)
class PushItem:
    id: int
    event_id: int
    client_id: int
    kind: str
    state: str
    attempts: int
    in_doubt: bool  # an earlier request may have landed (or a crash left it "sending")


@dataclass(frozen=True, slots=True)
class Failure:
    event_id: int
    client_id: int
    kind: str
    state: str
    attempts: int
    error: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    connector: str
    counts: Mapping[str, int]
    cursor: int | None
    head: int
    owner: str | None
    lease_until: datetime | None
    errors: Sequence[Failure]


async def counts_by_state(session: AsyncSession, connector: str) -> dict[str, int]:
    """Pushes of a connector per state (every state present, zero when none)."""
    p = PUSH.c
    counts = dict.fromkeys(STATES, 0)
    query = select(p.state, func.count()).where(p.connector == connector).group_by(p.state)
    for state, n in await session.execute(query):
        counts[state] = int(n)
    return counts


class PushState:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: str,
        *,
        max_attempts: int = SyncOptions().max_attempts,
    ) -> None:
        self._sessions = sessions
        self.connector = connector
        self.work = WorkQueue(WORK, max_attempts=max_attempts)
        self.mine = (PUSH.c.connector == connector,)

    # -- pushes ----------------------------------------------------------------------------

    async def due(self, now: datetime, limit: int) -> list[PushItem]:
        """Pending pushes that are due, oldest turn first."""
        p = PUSH.c
        query = (
            select(p.id, p.event_id, p.client_id, p.kind, p.state, p.attempts, p.in_doubt)
            .where(p.connector == self.connector, p.state == PENDING, p.next_try_at <= now)
            .order_by(p.next_try_at, p.event_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            PushItem(
                r.id,
                r.event_id,
                r.client_id,
                r.kind,
                r.state,
                r.attempts,
                bool(r.in_doubt),
            )
            for r in rows
        ]

    async def start(self, item: PushItem, now: datetime) -> bool:
        """Mark a push "sending" before its request goes out: a worker taking over after a
        crash finds it so and looks it up in the CRM before pushing it again."""
        async with self._sessions.begin() as session:
            conn = await session.connection()
            claimed = await self.work.claim(conn, now, 1, where=(*self.mine, PUSH.c.id == item.id))
            return bool(claimed.rows)

    async def done(self, item: PushItem, remote_id: str | None, now: datetime) -> None:
        """Done, with the CRM's id, in one update: never pushed again."""
        values = {"remote_id": remote_id, "last_error": None, "in_doubt": False}
        async with self._sessions.begin() as session:
            await self.work.finish(await session.connection(), [item.id], DONE, now, values=values)

    async def retry(
        self,
        item: PushItem,
        error: str,
        at: datetime,
        now: datetime,
        *,
        counts: bool,
        maybe_applied: bool,
    ) -> None:
        async with self._sessions.begin() as session:
            await self.work.retry(
                await session.connection(),
                item.id,
                error,
                now,
                attempts=item.attempts,
                counts=counts,
                at=at,
                values={"in_doubt": item.in_doubt or maybe_applied},
            )

    async def fail(self, item: PushItem, error: str, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await self.work.bury(await session.connection(), item.id, error, now)

    async def retry_failed(self, now: datetime, event_ids: Sequence[int] = ()) -> int:
        """Failed pushes back to pending with fresh attempts; how many."""
        where = [*self.mine]
        if event_ids:
            where.append(PUSH.c.event_id.in_(list(event_ids)))
        async with self._sessions.begin() as session:
            return await self.work.revive(await session.connection(), now, where=where)

    async def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        """Failed pushes of this connector, newest first."""
        async with self._sessions() as session:
            letters = await self.work.dead_letters(
                await session.connection(), where=self.mine, limit=limit
            )
        return letters

    # -- contacts ----------------------------------------------------------------------------

    async def contacts(self, client_ids: Sequence[int]) -> dict[int, str]:
        c = CONTACTS.c
        async with self._sessions() as session:
            rows = await session.execute(
                select(c.client_id, c.remote_id).where(
                    c.connector == self.connector, c.client_id.in_(list(set(client_ids)))
                )
            )
            return {r.client_id: r.remote_id for r in rows}

    async def remember_contact(
        self, client_id: int, remote_id: str, *, created: bool, now: datetime
    ) -> None:
        async with self._sessions.begin() as session:
            conn = await session.connection()
            stmt = dialect_insert(conn, CONTACTS).values(
                connector=self.connector,
                client_id=client_id,
                remote_id=remote_id,
                created=created,
                updated_at=now,
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[CONTACTS.c.connector, CONTACTS.c.client_id],
                    set_={"remote_id": remote_id, "created": created, "updated_at": now},
                )
            )

    async def forget_contact(self, client_id: int) -> None:
        c = CONTACTS.c
        async with self._sessions.begin() as session:
            await session.execute(
                CONTACTS.delete().where(c.connector == self.connector, c.client_id == client_id)
            )

    # -- status ------------------------------------------------------------------------------

    async def status(self, feed: TimelineFeed, *, errors: int = 10) -> Status:
        """Counts, cursor and lease, the newest event of the timeline (``feed``), the latest
        errors."""
        p, c = PUSH.c, CURSORS.c
        head = await feed.newest_id()
        async with self._sessions() as session:
            counts = await counts_by_state(session, self.connector)
            cursor = (
                await session.execute(
                    select(c.last_event_id, c.owner, c.lease_until).where(
                        c.connector == self.connector
                    )
                )
            ).first()
            rows = await session.execute(
                select(
                    p.event_id,
                    p.client_id,
                    p.kind,
                    p.state,
                    p.attempts,
                    p.last_error,
                    p.updated_at,
                )
                .where(
                    p.connector == self.connector,
                    p.last_error.is_not(None),
                    p.state.in_([FAILED, PENDING, SENDING]),
                )
                .order_by(p.updated_at.desc(), p.id.desc())
                .limit(errors)
            )
            failures = [
                Failure(
                    r.event_id,
                    r.client_id,
                    r.kind,
                    r.state,
                    r.attempts,
                    r.last_error,
                    r.updated_at,
                )
                for r in rows
            ]
        return Status(
            connector=self.connector,
            counts=counts,
            cursor=None if cursor is None else int(cursor.last_event_id),
            head=head,
            owner=None if cursor is None else cursor.owner,
            lease_until=None if cursor is None else cursor.lease_until,
            errors=failures,
        )
