"""Switching outreach on safely, end to end over the real database and the real dashboard:
a large planning pass waits for a manager's approval, a pause stops new contacts within one
dispatcher tick while the contact in flight ends normally."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import OrderInput, SqlHistoryStore
from outreach.control import SqlOutreachControl
from outreach.dispatcher import Dispatcher, DispatchSettings
from outreach.pacing import parse_pacing
from outreach.planner import Planner
from outreach.queue import AttemptQueue
from outreach.rules import ContactRules
from outreach.tables import AttemptRow
from povtor.db import session_factory
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, EventKind, Outcome, Purpose
from povtor.ports import PlanningRules
from tests.fakes.outreach_channels import ScriptedChannel
from tests.integration.dashboard.conftest import csrf_of, serving
from tests.integration.outreach.conftest import Clock, new_client

RULES = ContactRules(retries=ContactRules().retries)


async def nps_due(store: SqlHistoryStore, ext: str, now: datetime) -> int:
    """A client whose order was delivered five days ago: due for an NPS survey."""
    cid = await new_client(store, ext)
    await store.add_order(
        OrderInput(
            external_id=f"O-{ext}",
            client_external_id=ext,
            placed_at=now - timedelta(days=8),
            delivered_at=now - timedelta(days=5),
            amount=Decimal("1000.00"),
        )
    )
    return cid


async def states(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(AttemptRow.state).order_by(AttemptRow.id))
        return [r[0] for r in rows]


def planner(engine: AsyncEngine, queue: AttemptQueue, clock: Clock, threshold: int) -> Planner:
    return Planner(
        SqlPlanningSource(session_factory(engine)),
        queue,
        RULES,
        PlanningRules(),
        approval_threshold=threshold,
        clock=clock,
    )


async def test_a_pass_over_the_threshold_waits_until_a_manager_approves_it(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    call: ScriptedChannel,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
    db_url: str,
    tmp_path: Path,
) -> None:
    ids = [await nps_due(store, f"C{i}", clock()) for i in range(4)]
    assert await planner(engine, queue, clock, threshold=3).run_once() == 4
    assert await states(engine) == ["pending_approval"] * 4
    await make_dispatcher(call).run_until_idle()
    assert call.executed == []  # nothing goes out before the approval

    control = SqlOutreachControl(session_factory(engine), queue, store, RULES, clock=clock)
    async with serving(engine, store, db_url, tmp_path, outreach=control) as dash:
        [campaign] = await control.campaigns()
        assert (campaign.state, campaign.attempts, campaign.purpose) == ("pending", 4, Purpose.NPS)
        approve = f"/outreach/campaigns/{campaign.id}/approve"
        async with await dash.signed_in("vera") as viewer:  # a viewer sees but cannot decide
            async with viewer.get("/outreach") as page:
                html = await page.text()
                assert page.status == 200
                assert f'data-campaign="{campaign.id}"' in html
                assert approve not in html
            form = {"_csrf": csrf_of(html)}
            async with viewer.post(approve, data=form, allow_redirects=False) as refused:
                assert refused.status == 403
        async with await dash.signed_in("anna") as manager:
            async with manager.post(approve, data={}, allow_redirects=False) as no_token:
                assert no_token.status == 403
            async with manager.get("/outreach") as page:
                token = csrf_of(await page.text())
            async with manager.post(approve, data={"_csrf": token}, allow_redirects=False) as ok:
                assert ok.status == 303
            async with manager.post(
                approve, data={"_csrf": token}, allow_redirects=False
            ) as again:
                assert again.status == 409  # decided once

    assert await states(engine) == ["planned"] * 4
    await make_dispatcher(call).run_until_idle()
    assert sorted(ext for _key, ext in call.executed) == ["C0", "C1", "C2", "C3"]
    [action] = await control.actions()
    assert (action.actor, action.action, action.target) == (
        "anna",
        "approve",
        f"campaign:{campaign.id}",
    )
    notes = [e for e in await store.timeline(ids[0]) if e.kind is EventKind.NOTE]
    assert any(e.summary == f"Рассылка #{campaign.id} одобрена: anna" for e in notes)


async def test_a_pass_within_the_threshold_goes_out_at_once_and_a_rejected_one_never(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    call: ScriptedChannel,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    for i in range(2):
        await nps_due(store, f"A{i}", clock())
    assert await planner(engine, queue, clock, threshold=3).run_once() == 2
    assert await states(engine) == ["planned"] * 2
    control = SqlOutreachControl(session_factory(engine), queue, store, RULES, clock=clock)
    assert [c.state for c in await control.campaigns()] == ["auto"]

    for i in range(4):
        await nps_due(store, f"B{i}", clock())
    assert await planner(engine, queue, clock, threshold=3).run_once() == 4
    pending = [c for c in await control.campaigns() if c.state == "pending"]
    assert await control.decide_campaign(pending[0].id, approve=False, by="admin") == 4
    await make_dispatcher(call).run_until_idle()
    assert sorted(ext for _key, ext in call.executed) == ["A0", "A1"]
    assert (await states(engine)).count(AttemptState.GIVEN_UP.value) == 4


class EnteringChannel(ScriptedChannel):
    """Says when an execution has begun (before it waits on its gate)."""

    def __init__(self, kind: ChannelKind) -> None:
        super().__init__(kind)
        self.entered = asyncio.Event()

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        self.entered.set()
        return await super().execute(attempt, client)


class TickClock(Clock):
    """The test clock, also telling how many times the dispatcher looked at it (once a tick)."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.reads = 0
        self.read = asyncio.Event()

    def __call__(self) -> datetime:
        self.reads += 1
        self.read.set()
        return self.now

    async def ticks(self, n: int) -> None:
        target = self.reads + n
        async with asyncio.timeout(10):
            while self.reads < target:
                self.read.clear()
                await self.read.wait()


async def test_pause_stops_new_contacts_within_one_tick_and_in_flight_ones_end_normally(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    clock: Clock,
) -> None:
    call = EnteringChannel(ChannelKind.CALL)
    tick = TickClock(clock())
    for i in range(3):
        await nps_due(store, f"P{i}", tick())
    assert await planner(engine, queue, tick, threshold=0).run_once() == 3
    control = SqlOutreachControl(session_factory(engine), queue, store, RULES, clock=tick)
    dispatcher = Dispatcher(
        queue,
        store,
        {call.kind: call},
        RULES,
        settings=DispatchSettings(concurrency=1, batch_size=1, poll_interval_s=0.05),
        clock=tick,
    )
    call.gate = asyncio.Event()  # the first call stays on the line until the gate opens
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(10):
            await call.entered.wait()
        assert await control.set_paused(Purpose.NPS, True, by="anna")
        call.gate.set()  # the call in flight ends normally
        async with asyncio.timeout(10):
            while dispatcher.recorded < 1:
                await tick.ticks(1)
        await tick.ticks(3)  # more than one tick after the pause
        assert len(call.executed) == 1
        assert sorted(await states(engine)) == ["done", "planned", "planned"]

        assert await control.set_paused(Purpose.NPS, False, by="anna")
        dispatcher.wake()
        async with asyncio.timeout(10):
            while dispatcher.recorded < 3:
                await tick.ticks(1)
    finally:
        stop.set()
        await running
    assert len(call.executed) == 3
    assert [a.action for a in await control.actions()] == ["resume", "pause"]


async def test_pacing_spaces_contacts_over_the_hour_through_the_queue(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    call: ScriptedChannel,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    for i in range(3):
        await nps_due(store, f"R{i}", clock())
    assert await planner(engine, queue, clock, threshold=0).run_once() == 3
    paced = ContactRules(retries=RULES.retries, pacing=parse_pacing("call/*=60/h"))
    await make_dispatcher(call, rules=paced).run_until_idle()
    assert len(call.executed) == 1  # one a minute, not three at once
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(AttemptRow.not_before).where(AttemptRow.state == "planned")
        )
        assert {r[0] for r in rows} == {clock() + timedelta(minutes=1)}
    clock.advance(timedelta(minutes=1))
    await make_dispatcher(call, rules=paced).run_until_idle()
    assert len(call.executed) == 2
