"""Wake-ups: a dispatcher waiting for work starts attempts as soon as they become due, not at
its next poll. On PostgreSQL the write comes from another engine (another process's), and the
wake-up is its ``NOTIFY``; on SQLite one process dispatches, and the queue's own writes wake it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from outreach.dispatcher import Dispatcher
from outreach.queue import AttemptQueue
from povtor.db import create_engine, session_factory
from povtor.domain import Attempt, ChannelKind, Client, Outcome, Purpose
from tests.fakes.outreach_channels import ScriptedChannel
from tests.integration.outreach.conftest import Clock, attempt, new_client
from tests.integration.outreach.procs import wait_until

HOUR = 3600.0  # the poll interval: far beyond every deadline below
DEADLINE_S = 60.0


class SignallingChannel(ScriptedChannel):
    """Sets ``started`` when an execution begins."""

    def __init__(self) -> None:
        super().__init__(ChannelKind.CALL)
        self.started = asyncio.Event()

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        self.started.set()
        return await super().execute(attempt, client)


@asynccontextmanager
async def dispatching(dispatcher: Dispatcher) -> AsyncIterator[None]:
    """Run the dispatcher until it waits for work (and listens, on PostgreSQL)."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(DEADLINE_S):
            await dispatcher.idle.wait()
            if dispatcher.queue.dialect == "postgresql":
                await dispatcher.queue.work.wakeup.listening_now.wait()
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def other_process_queue(
    engine: AsyncEngine, db_url: str, same: AttemptQueue
) -> AsyncIterator[AttemptQueue]:
    """The planner's or the CLI's queue: on PostgreSQL over an engine of its own (as in another
    process); on SQLite, where one process dispatches, the dispatcher's own queue."""
    if engine.dialect.name != "postgresql":
        yield same
        return
    other = create_engine(db_url)
    try:
        yield AttemptQueue(session_factory(other), worker_id="cli", lease=timedelta(seconds=60))
    finally:
        await other.dispose()


async def test_attempts_planned_elsewhere_start_without_waiting_for_the_poll(
    engine: AsyncEngine,
    db_url: str,
    store: SqlHistoryStore,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    cid = await new_client(store, "C1")
    call = SignallingChannel()
    dispatcher = make_dispatcher(call, poll_interval_s=HOUR)
    async with dispatching(dispatcher), other_process_queue(engine, db_url, dispatcher.queue) as q:
        assert not call.started.is_set()
        assert await q.add([attempt(cid, "reorder:1")], clock()) == 1
        async with asyncio.timeout(DEADLINE_S):
            await call.started.wait()
    assert call.executed == [("reorder:1#1", "C1")]
    assert dispatcher.woken >= 1
    if engine.dialect.name == "postgresql":
        assert dispatcher.queue.work.wakeup.notified >= 1


async def test_an_approved_campaign_starts_without_waiting_for_the_poll(
    engine: AsyncEngine,
    db_url: str,
    store: SqlHistoryStore,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    cid = await new_client(store, "C1")
    call = SignallingChannel()
    dispatcher = make_dispatcher(call, poll_interval_s=HOUR)
    campaign = await dispatcher.queue.open_campaign(Purpose.REORDER, clock())
    await dispatcher.queue.add([attempt(cid, "reorder:1")], clock(), campaign_id=campaign)
    await dispatcher.queue.close_campaigns({campaign: 1}, clock(), hold=True)
    async with dispatching(dispatcher), other_process_queue(engine, db_url, dispatcher.queue) as q:
        assert not call.started.is_set()  # waiting for a manager
        await q.decide_campaign(campaign, approve=True, by="manager", now=clock())
        async with asyncio.timeout(DEADLINE_S):
            await call.started.wait()
    assert call.executed == [("reorder:1#1", "C1")]


async def test_a_lost_listen_connection_is_replaced_and_wakes_again(
    engine: AsyncEngine,
    db_url: str,
    store: SqlHistoryStore,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    """A database restart or a failover ends the LISTEN connection: the dispatcher keeps
    working (by polling meanwhile) and listens again on a new connection."""
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite has in-process wake-ups only")
    cid = await new_client(store, "C1")
    call = SignallingChannel()
    dispatcher = make_dispatcher(call, poll_interval_s=HOUR)
    wakeup = dispatcher.queue.work.wakeup
    async with dispatching(dispatcher), other_process_queue(engine, db_url, dispatcher.queue) as q:
        assert wakeup.listens == 1
        async with engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        assert killed == 1

        async def listening_again() -> bool:
            return wakeup.listens == 2 and wakeup.listening_now.is_set()

        await wait_until(listening_again, DEADLINE_S, what="a new LISTEN connection")
        await q.add([attempt(cid, "reorder:1")], clock())
        async with asyncio.timeout(DEADLINE_S):
            await call.started.wait()
    assert call.executed == [("reorder:1#1", "C1")]
