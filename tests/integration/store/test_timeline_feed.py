"""The timeline as a feed (the port the CRM push reads through), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, SqlHistoryStore
from crm_sync.history.timeline_feed import SqlTimelineFeed
from povtor.db import session_factory
from povtor.domain import ChannelKind, EventKind
from povtor.ports import NewEvent, NewNpsResponse, NewTask


async def test_feed_reads_in_id_order_with_the_records_events_point_to(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    feed = SqlTimelineFeed(session_factory(engine))
    assert await feed.newest_id() == 0
    assert list((await feed.page_after(0, 10)).events) == []

    client = await store.create_client(ClientInput(external_id="K-1", name="Анна"))
    complaint = await store.append_event(NewEvent(client.id, EventKind.COMPLAINT, "Холодный"))
    answer = await store.record_nps(
        NewNpsResponse(client.id, 3, ChannelKind.CALL, reason_text="долго везли")
    )
    task = await store.create_task(
        NewTask(client.id, "detractor", "Позвонить", datetime.now(UTC) + timedelta(hours=24))
    )
    newest = await feed.newest_id()
    page = await feed.page_after(0, 100)
    ids = [e.id for e in page.events]
    assert ids == sorted(ids)
    assert ids[-1] == newest
    assert complaint.id in ids

    first_two = await feed.page_after(0, 2)
    assert [e.id for e in first_two.events] == ids[:2]
    assert [e.id for e in (await feed.page_after(ids[0], 100)).events] == ids[1:]

    inside = await feed.in_ranges([(ids[-1], ids[-1]), (ids[0], ids[0])])
    assert [e.id for e in inside] == [ids[0], ids[-1]]

    records = await feed.with_records([*ids, 10_000_000])
    assert set(records) == set(ids)  # an unknown id is left out
    by_kind = {r.event.kind: r for r in records.values()}
    assert by_kind[EventKind.NPS_ANSWER].nps is not None
    assert by_kind[EventKind.NPS_ANSWER].nps.id == answer.id
    assert by_kind[EventKind.TASK].task is not None
    assert by_kind[EventKind.TASK].task.id == task.id
    assert by_kind[EventKind.COMPLAINT].nps is None
    assert by_kind[EventKind.COMPLAINT].task is None


async def test_postgres_pages_carry_the_snapshot_taken_after_the_read(
    engine: AsyncEngine, db_url: str
) -> None:
    page = await SqlTimelineFeed(session_factory(engine)).page_after(0, 10)
    if db_url.startswith("postgresql"):
        assert page.snapshot is not None
        assert page.snapshot.count(":") == 2  # xmin:xmax:xip
    else:
        assert page.snapshot is None
