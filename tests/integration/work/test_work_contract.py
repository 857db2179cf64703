"""The durable-work mechanism's contract, on SQLite and PostgreSQL: what every queue relies on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import BigId, UtcDateTime, create_engine
from povtor.work import WorkQueue, WorkTable, backoff

META = MetaData()
ITEMS = Table(
    "work_contract_items",
    META,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False),
    Column("next_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("worker_id", String(64)),
    Column("lease_token", String(64)),
    Column("lease_until", UtcDateTime),
    Column("updated_at", UtcDateTime),
)
SPEC = WorkTable(ITEMS, ready=("waiting",), claimed="leased", dead="dead")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def work_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(META.drop_all)
        await engine.dispose()


async def _add(engine: AsyncEngine, n: int, at: datetime = T0) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(ITEMS), [{"state": "waiting", "next_at": at, "attempts": 0}] * n)


def _queue(worker: str, **kw: object) -> WorkQueue:
    return WorkQueue(SPEC, worker_id=worker, lease=timedelta(minutes=1), **kw)  # type: ignore[arg-type]


async def _row(engine: AsyncEngine, row_id: int) -> dict[str, object]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(ITEMS).where(ITEMS.c.id == row_id))).one()
    return dict(row._mapping)


async def test_concurrent_claimers_never_take_the_same_row(
    work_engine: AsyncEngine, db_url: str
) -> None:
    await _add(work_engine, 300)
    engines = [create_engine(db_url) for _ in range(4)]
    taken: list[list[int]] = [[] for _ in engines]

    async def claimer(i: int) -> None:
        queue = _queue(f"w{i}")
        while True:
            async with engines[i].begin() as conn:
                batch = await queue.claim(conn, T0, 7)
            if not batch.rows:
                return
            taken[i] += [r.id for r in batch.rows]
            await asyncio.sleep(0)  # let the other claimers in between batches

    try:
        await asyncio.gather(*(claimer(i) for i in range(4)))
    finally:
        for engine in engines:
            await engine.dispose()
    every = [i for ids in taken for i in ids]
    assert len(every) == 300
    assert len(set(every)) == 300
    async with work_engine.connect() as conn:
        owners = dict((await conn.execute(select(ITEMS.c.id, ITEMS.c.worker_id))).tuples().all())
    for i, ids in enumerate(taken):
        assert {owners[row_id] for row_id in ids} <= {f"w{i}"}


async def test_claim_takes_only_due_rows_in_due_order(work_engine: AsyncEngine) -> None:
    await _add(work_engine, 1, T0 + timedelta(minutes=5))
    await _add(work_engine, 1, T0 - timedelta(minutes=1))
    await _add(work_engine, 1, T0 - timedelta(minutes=3))
    async with work_engine.begin() as conn:
        batch = await _queue("w").claim(conn, T0, 10)
    assert [r.id for r in batch.rows] == [3, 2]
    until = T0 + timedelta(minutes=1)
    assert {(r.state, r.lease_until) for r in batch.rows} == {("leased", until)}


async def test_expired_lease_is_taken_over_and_the_old_holder_cannot_finish(
    work_engine: AsyncEngine,
) -> None:
    await _add(work_engine, 2)
    first, second = _queue("first"), _queue("second")
    async with work_engine.begin() as conn:
        held = await first.claim(conn, T0, 2)
    async with work_engine.begin() as conn:
        # still leased: nothing to take over yet, and not due for a claim
        assert not (await second.claim(conn, T0 + timedelta(seconds=59), 5, takeover=True)).rows
        assert not (await second.claim(conn, T0 + timedelta(seconds=59), 5)).rows
        await first.renew(conn, T0 + timedelta(seconds=30))  # renewed: expires at T0+90s
        assert not (await second.claim(conn, T0 + timedelta(seconds=80), 5, takeover=True)).rows
    later = T0 + timedelta(seconds=91)
    async with work_engine.begin() as conn:
        taken = await second.claim(conn, later, 5, takeover=True)
    assert sorted(r.id for r in taken.rows) == [1, 2]
    assert {r.worker_id for r in taken.rows} == {"second"}
    async with work_engine.begin() as conn:
        refused = await first.finish(conn, [1, 2], "done", later, token=held.token)
        accepted = await second.finish(conn, [1], "done", later, token=taken.token)
    assert refused == set()
    assert accepted == {1}
    assert (await _row(work_engine, 1))["state"] == "done"
    assert (await _row(work_engine, 2))["state"] == "leased"


async def test_retry_waits_with_doubling_backoff_then_dead_letter(
    work_engine: AsyncEngine,
) -> None:
    await _add(work_engine, 1)
    queue = _queue("w", max_attempts=3, backoff_s=10.0, backoff_max_s=15.0)
    now = T0
    waits = []
    for _ in range(2):
        async with work_engine.begin() as conn:
            batch = await queue.claim(conn, now, 1)
            row = batch.rows[0]
            dead = await queue.retry(
                conn, row.id, "remote down", now, attempts=row.attempts, token=batch.token
            )
        assert not dead
        stored = await _row(work_engine, row.id)
        waits.append((stored["next_at"] - now).total_seconds())  # type: ignore[operator]
        async with work_engine.begin() as conn:  # not due before its time
            early = stored["next_at"] - timedelta(seconds=1)  # type: ignore[operator]
            assert not (await queue.claim(conn, early, 1)).rows
        now = stored["next_at"]  # type: ignore[assignment]
    assert waits == [10.0, 15.0]  # 10, then 20 capped at 15
    async with work_engine.begin() as conn:
        batch = await queue.claim(conn, now, 1)
        row = batch.rows[0]
        assert await queue.retry(conn, row.id, "still down", now, attempts=row.attempts)
    stored = await _row(work_engine, row.id)
    assert (stored["state"], stored["attempts"], stored["last_error"]) == ("dead", 3, "still down")
    assert stored["worker_id"] is None
    assert stored["lease_until"] is None
    async with work_engine.begin() as conn:
        assert not (await queue.claim(conn, now + timedelta(days=1), 1)).rows


async def test_dead_letters_are_listed_and_revived(work_engine: AsyncEngine) -> None:
    await _add(work_engine, 3)
    queue = _queue("w")
    async with work_engine.begin() as conn:
        batch = await queue.claim(conn, T0, 3)
        await queue.bury(conn, 1, "refused: no phone", T0, token=batch.token)
        await queue.bury(conn, 2, "refused: bad data", T0 + timedelta(seconds=1))
    async with work_engine.connect() as conn:
        dead = await queue.dead_letters(conn, queue="contract")
        assert await queue.count_dead(conn) == 2
    assert [(d.queue, d.id, d.attempts, d.error) for d in dead] == [
        ("contract", 2, 1, "refused: bad data"),
        ("contract", 1, 1, "refused: no phone"),
    ]
    async with work_engine.begin() as conn:
        assert await queue.revive(conn, T0 + timedelta(minutes=1), ids=[1]) == 1
    revived = await _row(work_engine, 1)
    assert (revived["state"], revived["attempts"]) == ("waiting", 0)
    async with work_engine.begin() as conn:
        again = await queue.claim(conn, T0 + timedelta(minutes=1), 5)
    assert [r.id for r in again.rows] == [1]


async def test_not_counted_retry_keeps_attempts(work_engine: AsyncEngine) -> None:
    await _add(work_engine, 1)
    queue = _queue("w", max_attempts=1)
    async with work_engine.begin() as conn:
        batch = await queue.claim(conn, T0, 1)
        at = T0 + timedelta(seconds=42)
        assert not await queue.retry(conn, 1, "429", T0, attempts=0, counts=False, at=at)
    stored = await _row(work_engine, 1)
    assert (stored["state"], stored["attempts"], stored["next_at"]) == ("waiting", 0, at)
    assert batch.rows


async def test_notify_wakes_a_waiting_worker_without_polling(
    work_engine: AsyncEngine, db_url: str
) -> None:
    """A worker waiting with a poll interval of an hour is woken when work is added: by a
    ``NOTIFY`` from another connection on PostgreSQL, by the in-process event on SQLite."""
    consumer = _queue("consumer")
    producer = _queue("producer")
    other = create_engine(db_url)
    try:
        async with consumer.listening(work_engine):
            waiting = asyncio.create_task(consumer.wakeup.wait(3600))
            await asyncio.sleep(0)  # the consumer is waiting now
            async with other.begin() as conn:
                await conn.execute(insert(ITEMS), {"state": "waiting", "next_at": T0})
                await producer.notify(conn)
            if other.dialect.name != "postgresql":
                consumer.wake()  # SQLite: one process, the producer shares the wake-up
            async with asyncio.timeout(30):  # a deadline, far below the poll interval
                assert await waiting
    finally:
        await other.dispose()


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    assert [backoff(n, 30.0, 200.0) for n in (0, 1, 2, 3, 4)] == [30.0, 30.0, 60.0, 120.0, 200.0]
