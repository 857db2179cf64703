"""The worker registry tells which other workers are gone (for recovering their calls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from outreach.registry import WorkerRegistry
from povtor.db import session_factory

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


async def test_stale_and_stopped_workers_are_dead_live_ones_and_self_are_not(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    now = [T0]

    def registry(worker_id: str) -> WorkerRegistry:
        return WorkerRegistry(sessions, worker_id, clock=lambda: now[0])

    stale, stopped, live, me = (registry(w) for w in ("stale", "stopped", "live", "me"))
    for worker in (stale, stopped, live, me):
        await worker.register()
    now[0] = T0 + timedelta(seconds=50)
    await stopped.beat(stopped=True)
    await live.beat()
    await me.beat()
    dead = await me.dead_workers(timedelta(seconds=30))
    assert sorted(dead) == ["stale", "stopped"]
    assert await me.dead_workers(timedelta(seconds=60)) == ["stopped"]
