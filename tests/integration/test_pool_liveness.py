"""PostgreSQL's pooled connections are checked on checkout only after sitting idle
(``povtor.db.ping_when_idle``): one the server cut while it was idle is replaced unseen; one
cut moments after its last use fails once, saying the connection was invalidated (the error
the callers that must not lose work retry), and the next checkout gets a new one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from povtor.db import create_engine, ping_when_idle

pytestmark = pytest.mark.postgres


@pytest.fixture
async def admin(pg_admin_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(pg_admin_url, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def _cut(admin: AsyncEngine, pid: int) -> None:
    """The server ends the backend ``pid`` (waits until it has gone: PostgreSQL 14+)."""
    async with admin.connect() as conn:
        ended = await conn.scalar(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
    assert ended


async def test_a_connection_cut_while_idle_is_replaced_on_checkout(
    pg_admin_url: str, admin: AsyncEngine
) -> None:
    engine = create_async_engine(pg_admin_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_s=0.0)  # every checkout counts as after a long idle
    try:
        first = await _pid(engine)
        await _cut(admin, first)
        second = await _pid(engine)  # no error: checked, found cut, replaced
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_cut_moments_after_use_fails_once_then_is_replaced(
    pg_admin_url: str, admin: AsyncEngine
) -> None:
    engine = create_async_engine(pg_admin_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_s=3600.0)  # never idle long enough to be checked
    try:
        first = await _pid(engine)
        await _cut(admin, first)
        with pytest.raises(DBAPIError) as failed:
            await _pid(engine)
        assert failed.value.connection_invalidated
        assert await _pid(engine) != first
    finally:
        await engine.dispose()


async def test_a_burst_of_requests_keeps_the_connections_it_opened(pg_admin_url: str) -> None:
    """Twice ``pool_size`` at once, twice over: the second burst reuses the first's connections
    (an overflow opened and closed them every time, ~10-20 ms of CPU each)."""
    engine = create_engine(pg_admin_url, pool_size=3, pre_ping=False)
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    held, all_in = asyncio.Event(), asyncio.Event()
    holding = 0

    async def hold() -> int:
        nonlocal holding
        async with engine.connect() as conn:
            pid = int(await conn.scalar(text("SELECT pg_backend_pid()")))
            holding += 1
            if holding == 6:
                all_in.set()
            await held.wait()
            return pid

    try:
        bursts = []
        for _ in range(2):
            held.clear()
            all_in.clear()
            holding = 0
            async with asyncio.TaskGroup() as burst:
                tasks = [burst.create_task(hold()) for _ in range(6)]
                async with asyncio.timeout(30):
                    await all_in.wait()  # six connections at once
                held.set()
            bursts.append({task.result() for task in tasks})
        assert len(bursts[0]) == 6
        assert bursts[1] == bursts[0]
        assert len(opened) == 6
    finally:
        await engine.dispose()
