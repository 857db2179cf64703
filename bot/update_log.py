"""Update ids claimed and handled: each Telegram update is handled once, across crashes too.

A worker claims an update before handling it (one statement for the updates in flight) under the
id of its run (``run``: a new one each time the worker starts), and marks it handled once its
handler finished (one statement per set). Telegram gives an update again when it was not
confirmed: a polled page is confirmed by the next ``getUpdates`` only after its updates were
handled, a webhook post by the answer, sent after the handler. So a redelivered update whose
claim is unhandled was in flight in a worker that died (SIGKILL, power loss, OOM), or is still
in flight somewhere. What its claim says decides:

- handled: done before; skipped (a redelivery, a webhook retry after a lost answer).
- unhandled, claimed by another run longer ago than ``stale_after`` (the polling lease: a dead
  poller's successor waits that long anyway): that run is taken for dead, and the claim passes
  to this run in the claiming statement itself (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``),
  so of two workers taking it at once one wins; handled again. A press is recorded by its
  callback query, so one the dead run wrote is not recorded twice (a reply it sent may be).
- otherwise (unhandled, claimed by this run or lately by another): :class:`UpdateBusy`; the
  caller tries again later, the poller with backoff, a webhook request by failing (Telegram
  posts it again), until the claim is handled or stale.

An age, not a liveness check of the claiming run: it needs no heartbeat of its own, and a live
run finishes an update well within a lease unless the database is away for that long (its
writes then wait, and may land beside the other run's: only keyed writes are idempotent then).
A handler that fails releases its claim (the row deleted), so a redelivery is handled again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.tables import BotUpdateRow
from povtor.db import dialect_insert, table_of, utcnow
from povtor.errors import PovtorError

UPDATES = table_of(BotUpdateRow)


class Claim(enum.Enum):
    FRESH = "fresh"  # claimed now by this run: handle it
    DONE = "done"  # handled before: skip it
    BUSY = "busy"  # in flight in a live run, or not yet taken for dead: try again later


class UpdateBusy(PovtorError):
    """An update claimed and not yet handled elsewhere: to be tried again later."""

    def __init__(self, update_id: int) -> None:
        super().__init__(f"update {update_id} is in flight elsewhere")
        self.update_id = update_id


class UpdateLog:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], run: str, stale_after: timedelta
    ) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]  # Core for the hot paths
        self.run = run
        self.stale_after = stale_after

    async def claim_updates(self, update_ids: Sequence[int]) -> dict[int, Claim]:
        """What each of ``update_ids`` is to this run; the fresh and the stale ones are claimed
        (one statement; a second reads the others, when there are any)."""
        if not update_ids:
            return {}
        now = utcnow()
        c = UPDATES.c
        async with self._engine.begin() as conn:
            insert = dialect_insert(conn, UPDATES)
            stmt = insert.on_conflict_do_update(
                index_elements=[c.update_id],
                set_={"claimed_by": insert.excluded.claimed_by, "received_at": now},
                where=and_(
                    c.handled_at.is_(None),
                    c.claimed_by != insert.excluded.claimed_by,
                    c.received_at < now - self.stale_after,
                ),
            ).returning(c.update_id)
            rows = [
                {"update_id": u, "received_at": now, "claimed_by": self.run} for u in update_ids
            ]
            fresh = set((await conn.execute(stmt, rows)).scalars())
            others = [u for u in update_ids if u not in fresh]
            done: set[int] = set()
            if others:
                done = set(
                    await conn.scalars(
                        select(c.update_id).where(
                            c.update_id.in_(others), c.handled_at.is_not(None)
                        )
                    )
                )
        return {
            u: Claim.FRESH if u in fresh else Claim.DONE if u in done else Claim.BUSY
            for u in update_ids
        }

    async def mark_handled(self, update_ids: Sequence[int]) -> None:
        """The handlers of this run's ``update_ids`` finished (one statement)."""
        if update_ids:
            c = UPDATES.c
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(UPDATES)
                    .where(c.update_id.in_(list(update_ids)), c.claimed_by == self.run)
                    .values(handled_at=utcnow())
                )

    async def forget_handled(self, before: datetime) -> int:
        """Drop the claims of updates handled before ``before``: Telegram gives an update again
        for a day at most, so an older claim stops nothing. How many went."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(UPDATES).where(UPDATES.c.handled_at < before))
        return int(result.rowcount)

    async def release_updates(self, update_ids: Sequence[int]) -> None:
        """Forget this run's unhandled claims of ``update_ids`` (their handling failed)."""
        if update_ids:
            c = UPDATES.c
            async with self._sessions.begin() as session:
                await session.execute(
                    delete(UPDATES).where(
                        c.update_id.in_(list(update_ids)),
                        c.claimed_by == self.run,
                        c.handled_at.is_(None),
                    )
                )
