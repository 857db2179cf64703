"""The CRM sync as managers see it (``povtor.ports.CrmSyncView``, for the dashboard): the
summary, the pushes that gave up, and putting them back in the queue. Counts and retries are
the same code as ``povtor crm status`` / ``povtor crm retry`` (:mod:`crm_sync.outbound.state`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.state import (
    CURSORS,
    DONE,
    FAILED,
    PENDING,
    PUSH,
    SENDING,
    PushState,
    counts_by_state,
)
from povtor.db import utcnow
from povtor.ports import CrmFailure, CrmSyncSummary

MAX_PAGE = 500


class SqlCrmSyncView:
    """One connector's sync; ``connector`` None: no CRM configured (nothing to show)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: str | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.connector = connector
        self._clock = clock

    async def summary(self) -> CrmSyncSummary:
        name = self.connector
        if name is None:
            return CrmSyncSummary(connector=None, counts={})
        p, c = PUSH.c, CURSORS.c
        mine = p.connector == name
        async with self._sessions() as session:
            counts = await counts_by_state(session, name)
            oldest = await session.scalar(
                select(func.min(p.created_at)).where(mine, p.state.in_([PENDING, SENDING]))
            )
            last_pushed = await session.scalar(
                select(func.max(p.updated_at)).where(mine, p.state == DONE)
            )
            retrying, next_try = (
                await session.execute(
                    select(func.count(), func.min(p.next_try_at)).where(
                        mine, p.state == PENDING, p.last_error.is_not(None)
                    )
                )
            ).one()
            lease = (
                await session.execute(select(c.owner, c.lease_until).where(c.connector == name))
            ).first()
        now = self._clock()
        held = lease is not None and lease.owner and lease.lease_until and lease.lease_until > now
        return CrmSyncSummary(
            connector=name,
            counts=counts,
            oldest_pending_at=oldest,
            last_pushed_at=last_pushed,
            retrying=int(retrying or 0),
            next_try_at=next_try if retrying else None,
            worker=lease.owner if held and lease is not None else None,
            lease_until=lease.lease_until if held and lease is not None else None,
        )

    async def failures(
        self, *, limit: int = 50, before_id: int | None = None
    ) -> Sequence[CrmFailure]:
        if self.connector is None:
            return []
        p = PUSH.c
        query = (
            select(p.id, p.event_id, p.client_id, p.kind, p.attempts, p.last_error, p.updated_at)
            .where(p.connector == self.connector, p.state == FAILED)
            .order_by(p.id.desc())
            .limit(max(1, min(limit, MAX_PAGE)))
        )
        if before_id is not None:
            query = query.where(p.id < before_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            CrmFailure(
                id=r.id,
                event_id=r.event_id,
                client_id=r.client_id,
                kind=r.kind,
                attempts=r.attempts,
                error=r.last_error or "",
                at=r.updated_at,
            )
            for r in rows
        ]

    async def retry(self, event_ids: Sequence[int] | None = None) -> int:
        """``None``: every failed push; an empty sequence: none."""
        if self.connector is None or (event_ids is not None and not event_ids):
            return 0
        state = PushState(self._sessions, self.connector)
        return await state.retry_failed(self._clock(), list(event_ids or ()))
