"""Durable work in a table: claim with a lease, take over expired leases, retry with backoff,
dead letters, wake-ups. One mechanism for every queue of the worker.

A queue keeps its own table; :class:`WorkTable` names the columns the mechanism needs (state,
due time, lease, attempts, last error), so each queue's rows stay where they are. What a queue
does beyond that (pacing, quiet hours, consent checks, looking a push up in the CRM before
sending it again) lives in the queue's own code, between a claim and its outcome.

- **Claim**: one statement per batch. PostgreSQL: ``UPDATE t SET <lease> WHERE id IN (SELECT
  id FROM t WHERE <due> ORDER BY .. LIMIT n FOR UPDATE SKIP LOCKED) RETURNING ..``: concurrent
  claimers skip each other's rows and never take the same one. SQLite: the same statement
  without the lock clause; SQLite runs one writer at a time, so the statement is atomic.
- **Lease**: a claimed row carries its owner and ``lease_until``; a worker that stops renewing
  loses it, and :meth:`WorkQueue.take_over` hands the row to another worker.
- **Retry**: :meth:`WorkQueue.retry` puts a row back with ``next_at`` pushed out by
  :func:`backoff` and one more attempt; after ``max_attempts`` the row becomes a dead letter.
- **Dead letters**: rows in the ``dead`` state, with their last error, listed for managers
  (:meth:`WorkQueue.dead_letters`) and put back by a manager (:meth:`WorkQueue.revive`).
- **Wake-ups**: :class:`Wakeup`, an in-process event a producer sets after it commits; on
  PostgreSQL also ``LISTEN``/``NOTIFY``, so a worker in another process stops waiting as soon as
  work is added (:meth:`WorkQueue.notify` inside the producer's transaction: delivered on commit;
  :meth:`WorkQueue.keep_listening` in the worker, listening again after a lost connection).
  Polling stays the fallback: a worker still looks for work every poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def backoff(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before try ``attempts + 1``: ``base_s`` doubled per attempt after the
    first, at most ``max_s``."""
    return min(max_s, base_s * 2.0 ** max(0, attempts - 1))


@dataclass(frozen=True, slots=True)
class WorkTable:
    """Which columns of a queue's own table hold the work's state.

    ``ready``: states a row waits in (the first is where retries go back to); ``claimed``: the
    state of a leased row; ``dead``: the dead-letter state. ``owner``/``token``/``lease_until``
    are optional: a queue whose rows are held by one worker at a time (a lease on the whole
    queue elsewhere) has none, and its claimed rows are told apart by state alone."""

    table: Table
    ready: tuple[str, ...]
    claimed: str
    dead: str
    running: tuple[str, ...] = ()  # further states under a lease (a claim being executed)
    state: str = "state"
    due_at: str = "next_at"
    attempts: str | None = "attempts"
    error: str | None = "last_error"
    owner: str | None = "worker_id"
    token: str | None = "lease_token"
    lease_until: str | None = "lease_until"
    updated_at: str | None = "updated_at"
    order_by: tuple[str, ...] = ()  # claim order; default: due time (ties: any order)
    channel: str = ""  # LISTEN/NOTIFY channel on PostgreSQL; default: the table's name

    def col(self, name: str) -> Column[Any]:
        return self.table.c[name]

    @property
    def leased(self) -> tuple[str, ...]:
        return (self.claimed, *self.running)

    @property
    def notify_channel(self) -> str:
        return self.channel or self.table.name


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Work that failed for good, as a manager sees it."""

    queue: str
    id: int
    attempts: int
    error: str
    at: datetime | None


class Wakeup:
    """Wakes a waiting worker: ``set`` in this process; on PostgreSQL also a ``NOTIFY`` on the
    table's channel from any process while :meth:`listening`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.listening_now = asyncio.Event()  # set while a LISTEN connection is up
        self.notified = 0  # NOTIFYs received (each also sets the wake-up)
        self.listens = 0  # LISTEN connections opened (more than one: a lost one was replaced)
        self._lost = asyncio.Event()  # the LISTEN connection went away

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    async def wait_set(self) -> None:
        """Wait until set (not consumed: :meth:`clear` before looking for work again)."""
        await self._event.wait()

    async def wait(self, within: float) -> bool:
        """Wait up to ``within`` s for a wake-up; True if one came (it is consumed)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken

    @contextlib.asynccontextmanager
    async def listening(self, engine: AsyncEngine, channel: str) -> AsyncIterator[None]:
        """While inside, a ``NOTIFY`` on ``channel`` sets this wake-up (PostgreSQL; on SQLite
        only in-process wake-ups exist: one worker process per SQLite database)."""
        if engine.dialect.name != "postgresql":
            yield
            return
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            self._lost = lost = asyncio.Event()

            def on_notify(*_: object) -> None:
                self.notified += 1
                self._event.set()

            def on_lost(*_: object) -> None:
                lost.set()
                self.listening_now.clear()
                self._event.set()  # a NOTIFY may have been missed: look for work once

            await raw.add_listener(channel, on_notify)
            raw.add_termination_listener(on_lost)
            self.listens += 1
            self.listening_now.set()
            try:
                yield
            finally:
                self.listening_now.clear()
                raw.remove_termination_listener(on_lost)
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await raw.remove_listener(channel, on_notify)

    async def keep_listening(
        self, engine: AsyncEngine, channel: str, *, retry_s: float = 5.0
    ) -> None:
        """Listen until cancelled, listening again after the connection is lost (a database
        restart); while not listening the waiting worker still polls. Returns at once where
        there is nothing to listen to (SQLite)."""
        if engine.dialect.name != "postgresql":
            return
        while True:
            try:
                async with self.listening(engine, channel):
                    await self._lost.wait()
                log.warning("LISTEN %s: connection lost; polling until it is back", channel)
            except Exception as err:  # the database is away: poll meanwhile, try again later
                log.warning(
                    "LISTEN %s failed (%s); polling, retry in %.0f s", channel, err, retry_s
                )
            await asyncio.sleep(retry_s)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A batch leased in one statement: its rows and the token that proves the lease."""

    rows: Sequence[Any]
    token: str


class WorkQueue:
    """Claims, leases, retries and dead letters over one queue's table (see the module)."""

    def __init__(
        self,
        spec: WorkTable,
        *,
        worker_id: str = "",
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 5,
        backoff_s: float = 30.0,
        backoff_max_s: float = 3600.0,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.spec = spec
        self.worker_id = worker_id
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.wakeup = wakeup or Wakeup()

    # -- claims -------------------------------------------------------------------------------

    def due(self, now: datetime) -> ColumnElement[bool]:
        s = self.spec
        return and_(s.col(s.state).in_(s.ready), s.col(s.due_at) <= now)

    def expired(self, now: datetime) -> ColumnElement[bool]:
        s = self.spec
        if s.lease_until is None:
            raise TypeError(f"{s.table.name} has no lease column: nothing expires")
        return and_(s.col(s.state).in_(s.leased), s.col(s.lease_until) < now)

    def claim_statement(
        self,
        now: datetime,
        limit: int,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        token: str = "",
        takeover: bool = False,
        values: Mapping[str, Any] | None = None,
        columns: Sequence[str] = (),
    ) -> Any:
        """The one claim statement (see the module); ``where`` narrows what is due, ``values``
        adds the queue's own columns to the lease; ``columns``: those the claimed rows bring
        back (default: all)."""
        s = self.spec
        id_col = s.table.c.id
        picked = (
            select(id_col)
            .where(self.expired(now) if takeover else self.due(now), *where)
            .order_by(*[s.col(c) for c in s.order_by or (s.due_at,)])
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        lease: dict[str, Any] = {s.state: s.claimed, **(values or {})}
        if s.owner is not None:
            lease[s.owner] = self.worker_id
        if s.token is not None:
            lease[s.token] = token
        if s.lease_until is not None:
            lease[s.lease_until] = now + self.lease
        if s.updated_at is not None:
            lease[s.updated_at] = now
        return (
            update(s.table)
            .where(id_col.in_(picked.scalar_subquery()))
            .values(lease)
            .returning(*self._returned(columns))
        )

    def _returned(self, columns: Sequence[str]) -> list[Column[Any]]:
        """The columns a claim brings back: ``columns`` in their order, then the id and the
        claim order's if not among them (the rows are sorted by those), or all."""
        s = self.spec
        if not columns:
            return list(s.table.c)
        names = dict.fromkeys((*columns, "id", *(s.order_by or (s.due_at,))))
        return [s.table.c[name] for name in names]

    async def claim(
        self,
        conn: AsyncConnection,
        now: datetime,
        limit: int,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        takeover: bool = False,
        values: Mapping[str, Any] | None = None,
        lock_by: str | None = None,
        hold: bool = False,
        columns: Sequence[str] = (),
    ) -> Claimed:
        """Lease up to ``limit`` due rows (or, with ``takeover``, rows whose lease ran out) in
        the caller's transaction; rows in claim order. With ``lock_by`` (PostgreSQL), the same
        statement then takes a transaction advisory lock on each value of that column among
        the rows claimed, in ascending order (several claimers never wait on each other in a
        circle); a later statement of the transaction reads under those locks.

        With ``hold`` the due rows are only locked for the caller's transaction (``FOR UPDATE
        SKIP LOCKED``; on SQLite the transaction's write lock holds them), not leased: the
        caller leases each one with the token returned, or puts it back, before it commits.
        One write of each row instead of two when the caller decides in the same transaction
        (``values`` and ``takeover`` do not apply). ``columns``: those the rows bring back
        (with the id and the claim order's; default: all): fewer values decoded per row."""
        if limit <= 0:
            return Claimed((), "")
        token = uuid.uuid4().hex
        s = self.spec
        stmt: Any
        if hold:
            stmt = (
                select(*self._returned(columns))
                .where(self.due(now), *where)
                .order_by(*[s.col(c) for c in s.order_by or (s.due_at,)])
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        else:
            stmt = self.claim_statement(
                now,
                limit,
                where=where,
                token=token,
                takeover=takeover,
                values=values,
                columns=columns,
            )
        if lock_by is not None:
            claimed = stmt.cte("claimed")
            ordered = select(claimed.c[lock_by]).distinct().order_by(claimed.c[lock_by])
            by = ordered.subquery().c[lock_by]
            locked = select(func.count(func.pg_advisory_xact_lock(by)))
            stmt = select(claimed, locked.scalar_subquery().label("locked_keys"))
        rows = list((await conn.execute(stmt)).all())
        rows.sort(key=operator.attrgetter(*(s.order_by or (s.due_at,)), "id"))
        return Claimed(rows, token)

    def held(self, ids: Sequence[int], token: str | None = None) -> ColumnElement[bool]:
        """Rows among ``ids`` still leased by this claim (by token, else owner, else state)."""
        s = self.spec
        conds = [s.table.c.id.in_(list(ids)), s.col(s.state) == s.claimed]
        if s.token is not None and token is not None:
            conds.append(s.col(s.token) == token)
        elif s.owner is not None:
            conds.append(s.col(s.owner) == self.worker_id)
        return and_(*conds)

    async def renew(self, conn: AsyncConnection, now: datetime) -> int:
        """Extend every lease this worker holds; how many."""
        s = self.spec
        if s.lease_until is None or s.owner is None:
            return 0
        result = await conn.execute(
            update(s.table)
            .where(s.col(s.owner) == self.worker_id, s.col(s.state).in_(s.leased))
            .values({s.lease_until: now + self.lease})
        )
        return int(result.rowcount or 0)

    # -- outcomes -----------------------------------------------------------------------------

    def _released(self, now: datetime) -> dict[str, Any]:
        s = self.spec
        values: dict[str, Any] = {}
        for name in (s.owner, s.token, s.lease_until):
            if name is not None:
                values[name] = None
        if s.updated_at is not None:
            values[s.updated_at] = now
        return values

    async def finish(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        state: str,
        now: datetime,
        *,
        token: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> set[int]:
        """Move held rows to ``state`` (done, or whatever the queue calls it) with ``values``;
        the ids that were still held (a row taken over meanwhile is not touched)."""
        if not ids:
            return set()
        s = self.spec
        stmt = (
            update(s.table)
            .where(self.held(ids, token))
            .values({s.state: state, **self._released(now), **(values or {})})
            .returning(s.table.c.id)
        )
        return {r[0] for r in await conn.execute(stmt)}

    async def retry(
        self,
        conn: AsyncConnection,
        row_id: int,
        error: str,
        now: datetime,
        *,
        attempts: int,
        token: str | None = None,
        counts: bool = True,
        at: datetime | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """A failed try: back to wait with backoff (or at ``at``), or a dead letter when
        ``attempts`` (the tries before this one) plus this one reach ``max_attempts``.
        ``counts=False``: a try that does not count (the remote asked us to slow down).
        True if the row became a dead letter."""
        s = self.spec
        tried = attempts + (1 if counts else 0)
        dead = counts and tried >= self.max_attempts
        extra: dict[str, Any] = dict(values or {})
        if s.attempts is not None:
            extra[s.attempts] = s.col(s.attempts) + (1 if counts else 0)
        if s.error is not None:
            extra[s.error] = error
        if dead:
            await self.finish(conn, [row_id], s.dead, now, token=token, values=extra)
            return True
        if at is None:
            at = now + timedelta(seconds=backoff(tried, self.backoff_s, self.backoff_max_s))
        extra[s.due_at] = at
        await self.finish(conn, [row_id], s.ready[0], now, token=token, values=extra)
        return False

    async def bury(
        self,
        conn: AsyncConnection,
        row_id: int,
        error: str,
        now: datetime,
        *,
        token: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """A dead letter at once (refused for good: retrying cannot help)."""
        s = self.spec
        extra: dict[str, Any] = dict(values or {})
        if s.attempts is not None:
            extra[s.attempts] = s.col(s.attempts) + 1
        if s.error is not None:
            extra[s.error] = error
        return bool(await self.finish(conn, [row_id], s.dead, now, token=token, values=extra))

    # -- dead letters -------------------------------------------------------------------------

    async def dead_letters(
        self,
        conn: AsyncConnection,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        limit: int = 50,
        queue: str = "",
    ) -> list[DeadLetter]:
        """Dead letters, newest first."""
        s = self.spec
        c = s.table.c
        at = s.col(s.updated_at) if s.updated_at is not None else s.col(s.due_at)
        tries = s.col(s.attempts) if s.attempts is not None else text("0")
        err = s.col(s.error) if s.error is not None else text("''")
        rows = await conn.execute(
            select(c.id, tries, err, at)
            .where(s.col(s.state) == s.dead, *where)
            .order_by(at.desc(), c.id.desc())
            .limit(limit)
        )
        return [
            DeadLetter(queue or s.table.name, int(r[0]), int(r[1] or 0), str(r[2] or ""), r[3])
            for r in rows
        ]

    async def count_dead(
        self, conn: AsyncConnection, *, where: Sequence[ColumnElement[bool]] = ()
    ) -> int:
        s = self.spec
        query = select(func.count()).select_from(s.table).where(s.col(s.state) == s.dead, *where)
        return int((await conn.execute(query)).scalar_one())

    async def revive(
        self,
        conn: AsyncConnection,
        now: datetime,
        *,
        ids: Sequence[int] = (),
        where: Sequence[ColumnElement[bool]] = (),
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """Dead letters (all, or ``ids``) back to wait, due now, with fresh attempts."""
        s = self.spec
        conds: list[ColumnElement[bool]] = [s.col(s.state) == s.dead, *where]
        if ids:
            conds.append(s.table.c.id.in_(list(ids)))
        back: dict[str, Any] = {s.state: s.ready[0], s.due_at: now, **(values or {})}
        if s.attempts is not None:
            back[s.attempts] = 0
        if s.updated_at is not None:
            back[s.updated_at] = now
        result = await conn.execute(update(s.table).where(*conds).values(back))
        return int(result.rowcount or 0)

    # -- wake-ups -----------------------------------------------------------------------------

    async def notify(self, conn: AsyncConnection) -> None:
        """Tell waiting workers that work was added: on PostgreSQL a ``NOTIFY``, delivered when
        the caller's transaction commits. Call :meth:`wake` after the commit for this process."""
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_notify(:channel, '')"), {"channel": self.spec.notify_channel}
            )

    def wake(self) -> None:
        self.wakeup.set()

    def listening(self, engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[None]:
        return self.wakeup.listening(engine, self.spec.notify_channel)

    async def keep_listening(self, engine: AsyncEngine) -> None:
        """Wake on this queue's ``NOTIFY`` until cancelled (see :meth:`Wakeup.keep_listening`)."""
        await self.wakeup.keep_listening(engine, self.spec.notify_channel)


__all__ = ["Claimed", "DeadLetter", "Wakeup", "WorkQueue", "WorkTable", "backoff"]
