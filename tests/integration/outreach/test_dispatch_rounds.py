"""A dispatch round over real SQLite and PostgreSQL: the outcomes waiting, the claims and the
decisions of a whole batch in one transaction. Some attempts of a batch start, the others wait
or are given up, each for its own reason; only the started ones are leased and counted as
contacts; a round that fails leaves nothing claimed and nothing recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from outreach.caps import history_since
from outreach.dispatcher import Dispatcher
from outreach.queue import AttemptQueue, Claim, Decide, Finish
from outreach.tables import AttemptRow, ContactRow
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, Outcome, OutcomeKind
from tests.fakes.outreach_channels import ScriptedChannel
from tests.integration.outreach.conftest import NOON_MSK, Clock, attempt, new_client


class EnteringChannel(ScriptedChannel):
    """Says when ``expected`` executions have begun (before they wait on the gate)."""

    def __init__(self, expected: int) -> None:
        super().__init__(ChannelKind.CALL)
        self.expected = expected
        self.all_entered = asyncio.Event()

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        self.expected -= 1
        if self.expected == 0:
            self.all_entered.set()
        return await super().execute(attempt, client)


async def rows(engine: AsyncEngine) -> dict[str, AttemptRow]:
    async with engine.connect() as conn:
        found = await conn.execute(select(AttemptRow.__table__))
        return {r.idempotency_key: r for r in found}  # type: ignore[misc]


async def contacts(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return sorted(r[0] for r in await conn.execute(select(ContactRow.attempt_id)))


async def test_one_round_starts_some_attempts_and_holds_back_the_others_each_for_its_reason(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    call: ScriptedChannel,
    make_dispatcher,
    clock: Clock,
) -> None:
    ok = await new_client(store, "OK")
    out = await new_client(store, "OUT")
    await store.set_opt_out(out, True, source="test")
    night = await new_client(store, "NIGHT", tz="Asia/Kamchatka")  # 21:00 there
    twice = await new_client(store, "TWICE")  # one call a day: the second waits
    await queue.add(
        [
            attempt(ok, "ok"),
            attempt(out, "out"),
            attempt(night, "night"),
            attempt(twice, "twice-1", not_before=NOON_MSK - timedelta(minutes=2)),
            attempt(twice, "twice-2"),
        ],
        clock(),
    )
    dispatcher = make_dispatcher(call, batch_size=10)  # the whole batch in one round
    assert await dispatcher.run_until_idle() == 5

    assert sorted(call.executed) == [("ok#1", "OK"), ("twice-1#1", "TWICE")]
    found = await rows(engine)
    assert {k: (r.state, r.last_detail) for k, r in found.items()} == {
        "ok": ("done", "answered"),
        "out": ("given_up", "opted out"),
        "night": ("planned", "quiet hours"),
        "twice-1": ("done", "answered"),
        "twice-2": ("planned", "contact cap reached"),
    }
    assert found["night"].not_before == NOON_MSK + timedelta(hours=12)
    assert found["twice-2"].not_before == NOON_MSK + timedelta(hours=21)
    for row in found.values():  # the started ones were leased until recorded, none is now
        assert (row.worker_id, row.lease_token, row.lease_expires_at) == (None, None, None)
    assert await contacts(engine) == sorted([found["ok"].id, found["twice-1"].id])
    assert await queue.take_over_expired(clock() + timedelta(days=1), 10) == []  # none leased


async def test_attempts_started_by_a_round_are_leased_to_the_worker_until_recorded(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    make_dispatcher,
    clock: Clock,
) -> None:
    first, second = await new_client(store, "A"), await new_client(store, "B")
    await queue.add([attempt(first, "a"), attempt(second, "b")], clock())
    calls = EnteringChannel(2)
    calls.gate = asyncio.Event()  # the calls stay on the line
    dispatcher: Dispatcher = make_dispatcher(calls, batch_size=10, poll_interval_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(30):
            await calls.all_entered.wait()
        found = await rows(engine)
        tokens = {found[k].lease_token for k in ("a", "b")}
        for key in ("a", "b"):
            row = found[key]
            assert row.state == AttemptState.IN_PROGRESS.value
            assert row.worker_id == queue.worker_id
            assert row.lease_expires_at == clock() + queue.lease
        assert len(tokens) == 1  # one claim, one token
        assert None not in tokens
    finally:
        calls.gate.set()
        stop.set()
        await running
    assert {k: r.state for k, r in (await rows(engine)).items()} == {"a": "done", "b": "done"}


async def test_a_round_that_fails_leaves_nothing_claimed_and_its_outcomes_for_the_next(
    engine: AsyncEngine, store: SqlHistoryStore, queue: AttemptQueue, make_dispatcher, clock: Clock
) -> None:
    first, second = await new_client(store, "A"), await new_client(store, "B")
    await queue.add([attempt(first, "a")], clock())
    dispatcher: Dispatcher = make_dispatcher(ScriptedChannel(ChannelKind.CALL))
    now = clock()
    since = history_since(now)

    async def decider(claims: list[Claim], _session: object) -> Decide:
        return await dispatcher._decider(claims, now)

    try:
        started = await queue.dispatch(
            now, 10, finished=[], take_over=False, since=since, decider=decider
        )
        [claim] = started.claims
        answered = Finish(
            claim, ChannelKind.CALL, Outcome(OutcomeKind.ANSWERED), AttemptState.DONE
        )
        await queue.add([attempt(second, "b")], clock())

        async def broken(_claims: list[Claim], _session: object) -> Decide:
            raise RuntimeError("the clients could not be read")

        with pytest.raises(RuntimeError):
            await queue.dispatch(
                now,
                10,
                finished=[answered],
                take_over=False,
                since=since,
                decider=broken,
            )
        found = await rows(engine)
        assert (found["a"].state, found["a"].last_outcome) == ("in_progress", None)  # not recorded
        assert (found["b"].state, found["b"].worker_id) == ("planned", None)  # not claimed
        assert await contacts(engine) == [found["a"].id]

        again = await queue.dispatch(
            now,
            10,
            finished=[answered],
            take_over=False,
            since=history_since(now),
            decider=decider,
        )
        assert [f.claim.attempt.id for f in again.recorded] == [found["a"].id]
        assert [c.attempt.idempotency_key for c in again.claims] == ["b"]
        found = await rows(engine)
        assert (found["a"].state, found["a"].last_outcome) == ("done", "answered")
        assert found["b"].state == "in_progress"
    finally:
        await queue.close()  # the connection it kept between rounds
