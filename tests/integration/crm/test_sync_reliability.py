"""Exactly once in effect: lost answers, a worker dying mid-request, a CRM that goes down and
comes back, rate limits, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import Timeline, bitrix_sync, push_rows, running, settled

pytestmark = pytest.mark.crm

KEY = re.compile(r"\[povtor:(\d+)\]")


def keys(fake: FakeBitrix24) -> Counter[str]:
    texts = [c["COMMENT"] for c in fake.portal.comments.values()]
    texts += [a["DESCRIPTION"] for a in fake.portal.activities.values()]
    return Counter(k for t in texts for k in KEY.findall(t))


async def busy_timeline(timeline: Timeline, clients: int = 3) -> None:
    for n in range(clients):
        client = await timeline.client(f"Клиент {n}", f"+7916000{n:04d}")
        await timeline.nps(client, n % 11, "Дорого" if n % 2 else None)
        await timeline.outcome(client, attempt_id=100 + n)
        await timeline.task(client, f"Перезвонить {n}")
        await timeline.not_pushed(client, n)


async def test_answers_lost_after_the_crm_acted_are_looked_up_not_repeated(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    await busy_timeline(timeline)
    bitrix.lose_answers(1, {"crm.contact.add"})
    bitrix.lose_answers(2, {"crm.timeline.comment.add"})
    bitrix.lose_answers(1, {"crm.activity.todo.add"})
    sync = bitrix_sync(sessions, db_url, bitrix)

    async with running(sync):
        await settled(sync)

    assert len(bitrix.portal.contacts) == 3  # the lost contact.add was found by phone
    assert keys(bitrix) == Counter({k: 1 for k in keys(bitrix)})
    assert len(keys(bitrix)) == timeline.pushable
    assert bitrix.count("crm.timeline.comment.list") == 2
    assert bitrix.count("crm.activity.list") == 1
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}
    assert not any(r.in_doubt for r in rows)


async def test_a_worker_killed_mid_request_is_taken_over_without_a_double(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    await busy_timeline(timeline)
    arrived = bitrix.hold({"crm.timeline.comment.add"})
    dying = bitrix_sync(sessions, db_url, bitrix, owner="worker-1", lease_s=0.001)
    task = asyncio.create_task(dying.round())
    await asyncio.wait_for(arrived.wait(), 10)  # the CRM has the comment; no answer yet
    task.cancel()  # the worker dies here
    with pytest.raises(asyncio.CancelledError):
        await task
    await dying.connector.aclose()
    [left] = [r for r in await push_rows(sessions) if r.state == "sending"]

    successor = bitrix_sync(sessions, db_url, bitrix, owner="worker-2")
    report = await successor.sync_once()
    await successor.connector.aclose()

    assert report.failed == 0
    assert keys(bitrix) == Counter({k: 1 for k in keys(bitrix)})
    assert len(keys(bitrix)) == timeline.pushable
    assert str(left.event_id) in keys(bitrix)
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}
    [again] = [r for r in rows if r.event_id == left.event_id]
    assert again.remote_id is not None
    assert int(again.remote_id) in bitrix.portal.comments


async def test_a_crm_that_goes_down_loses_and_doubles_nothing_when_it_is_back(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    await busy_timeline(timeline)
    await bitrix.go_down()
    sync = bitrix_sync(sessions, db_url, bitrix)

    while_down = await sync.sync_once()
    rows = await push_rows(sessions)
    assert (while_down.pushed, while_down.failed, while_down.retried) == (0, 0, 1)
    assert {r.state for r in rows} == {"pending"}
    [tried] = [r for r in rows if r.attempts]
    assert "Bitrix24" in (tried.last_error or "")

    await bitrix.come_up()
    bitrix.fail_next(2, 500, {"crm.timeline.comment.add"})  # back, but wobbly at first
    async with running(sync):
        await settled(sync)

    assert keys(bitrix) == Counter({k: 1 for k in keys(bitrix)})
    assert len(keys(bitrix)) == timeline.pushable
    assert bitrix.count("crm.timeline.comment.add", 500) == 2
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}


async def test_events_out_of_attempts_are_failed_with_the_last_error(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    client = await timeline.client("Иван", "+79161234567")
    await timeline.complaint(client, "Сломалось")
    bitrix.fail_next(3, 502, {"crm.timeline.comment.add"})
    sync = bitrix_sync(sessions, db_url, bitrix, max_attempts=3)

    async with running(sync):
        await settled(sync)

    [row] = await push_rows(sessions)
    assert (row.state, row.attempts) == ("failed", 3)
    assert "HTTP 502" in (row.last_error or "")
    assert "gave up after 3 attempts" in (row.last_error or "")


async def test_rate_limit_answers_are_waited_out_and_not_counted_as_failures(
    db_url: str, sessions: async_sessionmaker[AsyncSession], timeline: Timeline
) -> None:
    fake = FakeBitrix24(bucket_size=3, leak_per_s=20)  # a tiny bucket, and a client ignoring it
    await fake.start()
    try:
        await busy_timeline(timeline)
        sync = bitrix_sync(sessions, db_url, fake)
        async with running(sync):
            await settled(sync)
    finally:
        await fake.stop()

    limited = sum(1 for r in fake.received if r.status == 503)
    assert limited > 0
    assert keys(fake) == Counter({k: 1 for k in keys(fake)})
    assert len(keys(fake)) == timeline.pushable
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}
    assert {r.attempts for r in rows} == {0}


async def test_the_client_side_limiter_keeps_inside_the_portal_bucket(
    db_url: str, sessions: async_sessionmaker[AsyncSession], timeline: Timeline
) -> None:
    fake = FakeBitrix24(bucket_size=4, leak_per_s=20)
    await fake.start()
    try:
        await busy_timeline(timeline, clients=2)
        sync = bitrix_sync(sessions, db_url, fake, rate=18, burst=3)
        report = await sync.sync_once()
        await sync.connector.aclose()
    finally:
        await fake.stop()

    assert report.pushed == timeline.pushable
    assert [r for r in fake.received if r.status != 200] == []
    times = [r.at for r in fake.received]
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 18 + 3
