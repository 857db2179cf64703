"""The worker registry: each worker's row with a heartbeat (leases decide ownership; this is
for operators and `povtor attempts`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.tables import WorkerRow
from povtor.db import insert_ignore, table_of, utcnow
from povtor.lifecycle import wait_or_stop

log = logging.getLogger(__name__)
W = table_of(WorkerRow)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerRegistry:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        worker_id: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self._clock = clock
        self.dialect: str = sessions.kw["bind"].dialect.name

    async def register(self) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            await session.execute(
                insert_ignore(self.dialect, W),
                {
                    "id": self.worker_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": now,
                    "heartbeat_at": now,
                    "stopped_at": None,
                },
            )

    async def beat(self, *, stopped: bool = False) -> None:
        now = self._clock()
        values: dict[str, object] = {"heartbeat_at": now}
        if stopped:
            values["stopped_at"] = now
        async with self._sessions.begin() as session:
            await session.execute(update(W).where(W.c.id == self.worker_id).values(**values))

    async def dead_workers(self, stale_after: timedelta) -> list[str]:
        """Other workers that stopped, or whose heartbeat is older than ``stale_after``."""
        cutoff = self._clock() - stale_after
        async with self._sessions() as session:
            rows = await session.execute(
                select(W.c.id).where(
                    W.c.id != self.worker_id,
                    or_(W.c.stopped_at.is_not(None), W.c.heartbeat_at < cutoff),
                )
            )
            return [row[0] for row in rows]

    async def run(self, stop: asyncio.Event, *, interval_s: float = 10.0) -> None:
        await self.register()
        while not stop.is_set():
            await wait_or_stop(stop, interval_s)
            try:
                await self.beat(stopped=stop.is_set())
            except Exception:
                log.exception("worker heartbeat failed")
