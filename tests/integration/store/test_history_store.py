"""The history store on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from crm_sync.history.timeline_feed import SqlTimelineFeed
from povtor.db import session_factory
from povtor.domain import (
    ChannelKind,
    ConsentChannel,
    EventKind,
    OrderItem,
    ReasonCategory,
    TaskStatus,
)
from povtor.errors import NotFound
from povtor.ports import NewEvent, NewNpsResponse, NewTask


async def _client(store: SqlHistoryStore, ext: str = "C1") -> int:
    client = await store.create_client(
        ClientInput(
            external_id=ext,
            name="Иван Петров",
            phones=("+79161234567", "+79031112233"),
            timezone="Asia/Yekaterinburg",
            consents=((ConsentChannel.CALL, True, "import"),),
        )
    )
    return client.id


async def test_client_round_trips_with_phones_and_consent(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    client = await store.get_client(cid)
    assert client.external_id == "C1"
    assert client.phones == ("+79161234567", "+79031112233")
    assert client.timezone == "Asia/Yekaterinburg"
    consent = client.consent_for(ConsentChannel.CALL)
    assert consent is not None
    assert consent.granted
    assert consent.at.tzinfo is not None
    assert (await store.find_client_by_phone("+79031112233")) == client
    assert await store.find_client("nope") is None


async def test_missing_client_raises_not_found(store: SqlHistoryStore) -> None:
    with pytest.raises(NotFound):
        await store.get_client(424242)


async def test_timestamps_come_back_timezone_aware_utc(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    msk = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(hours=3)
    await store.add_order(
        OrderInput(
            external_id="O1",
            client_external_id="C1",
            placed_at=msk.astimezone(UTC),
            amount=Decimal("1234.50"),
            items=(OrderItem(name="Кофе", category="coffee"),),
        )
    )
    (order,) = await store.list_orders(cid)
    assert order.placed_at == msk
    assert order.placed_at.utcoffset() == timedelta(0)
    assert order.amount == Decimal("1234.50")
    assert order.items[0].category == "coffee"


async def test_naive_datetimes_are_refused(store: SqlHistoryStore) -> None:
    await _client(store)
    with pytest.raises(Exception, match="naive datetime"):
        await store.add_order(
            OrderInput(
                external_id="O1",
                client_external_id="C1",
                placed_at=datetime(2026, 1, 1),
                amount=Decimal(1),
            )
        )


async def test_timeline_pages_newest_first(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    for i in range(7):
        await store.append_event(
            NewEvent(client_id=cid, kind=EventKind.NOTE, summary=f"заметка {i}")
        )
    first = await store.timeline(cid, limit=3)
    second = await store.timeline(cid, before_id=first[-1].id, limit=3)
    third = await store.timeline(cid, before_id=second[-1].id, limit=3)
    summaries = [e.summary for e in (*first, *second, *third)]
    assert summaries == [f"заметка {i}" for i in range(6, -1, -1)]


async def test_timeline_is_sorted_by_when_things_happened_not_by_insertion(
    store: SqlHistoryStore,
) -> None:
    cid = await _client(store)
    base = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for day in (5, 1, 9, 3, 7):  # imported out of order, as an old export would be
        await store.append_event(
            NewEvent(cid, EventKind.NOTE, f"день {day}", at=base + timedelta(days=day))
        )
    first = await store.timeline(cid, limit=3)
    rest = await store.timeline(cid, before_id=first[-1].id, limit=3)
    assert [e.summary for e in (*first, *rest)] == [f"день {d}" for d in (9, 7, 5, 3, 1)]


async def test_timeline_merges_orders_and_events_by_time_across_pages(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    cid = await _client(store)
    other = await _client(store, "C2")
    base = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for day in (2, 6, 4):  # an order and a note at the same moment on day 4
        await store.add_order(
            OrderInput(f"O{day}", "C1", base + timedelta(days=day), Decimal("99.5"), "USD")
        )
    await store.add_order(OrderInput("X1", "C2", base + timedelta(days=5), Decimal("1")))
    for day in (1, 4, 5, 8):
        await store.append_event(
            NewEvent(cid, EventKind.NOTE, f"день {day}", at=base + timedelta(days=day))
        )
    await store.append_event(NewEvent(other, EventKind.NOTE, "чужая", at=base))

    pages = [await store.timeline(cid, limit=2)]
    while len(pages[-1]) == 2:
        pages.append(await store.timeline(cid, before_id=pages[-1][-1].id, limit=2))
    merged = [e for page in pages for e in page]

    # at the same moment the order comes first, as it did when its copy was written last
    assert [e.summary for e in merged] == [
        "день 8", "Заказ O6 на 99.50 USD", "день 5", "Заказ O4 на 99.50 USD", "день 4",
        "Заказ O2 на 99.50 USD", "день 1",
    ]  # fmt: skip
    assert merged == list(await store.timeline(cid, limit=100))
    orders = {o.external_id: o for o in await store.list_orders(cid)}
    [entry] = [e for e in merged if e.kind is EventKind.ORDER and e.data["external_id"] == "O4"]
    assert (entry.client_id, entry.at, entry.ref) == (
        cid,
        orders["O4"].placed_at,
        f"order:{orders['O4'].id}",
    )
    assert entry.data == {"external_id": "O4", "amount": "99.50"}
    assert len({e.id for e in merged}) == len(merged)
    assert await store.timeline(cid, before_id=entry.id + 10_000) == []  # not this client's
    # the feed the CRM push follows carries events only: it pushes no orders
    page = await SqlTimelineFeed(session_factory(engine)).page_after(0, 100)
    assert EventKind.ORDER not in {e.kind for e in page.events}
    assert len(page.events) == 5


async def test_event_with_same_dedup_key_is_appended_once(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    event = NewEvent(client_id=cid, kind=EventKind.CALL, summary="звонок", dedup_key="call:x")
    first = await store.append_event(event)
    again = await store.append_event(event)
    assert first.id == again.id
    assert len(await store.timeline(cid)) == 1


async def test_nps_answer_is_recorded_once_and_lands_in_timeline(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    answer = NewNpsResponse(
        client_id=cid,
        score=6,
        channel=ChannelKind.TELEGRAM,
        reason_text="курьер опоздал",
        reason_category=ReasonCategory.DELIVERY,
        dedup_key="survey:1",
    )
    first = await store.record_nps(answer)
    second = await store.record_nps(answer)
    assert first.id == second.id
    assert first.reason_category is ReasonCategory.DELIVERY
    kinds = [e.kind for e in await store.timeline(cid)]
    assert kinds == [EventKind.NPS_ANSWER]


async def test_opt_out_and_back_in_are_recorded(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    client = await store.set_opt_out(cid, True, source="telegram:/stop")
    assert client.opted_out
    client = await store.set_opt_out(cid, False, source="telegram:/start")
    assert not client.opted_out
    kinds = [e.kind for e in await store.timeline(cid)]
    assert kinds == [EventKind.OPT_IN, EventKind.OPT_OUT]


async def test_telegram_chat_moves_to_the_newly_linked_client(store: SqlHistoryStore) -> None:
    first = await _client(store, "C1")
    second = await _client(store, "C2")
    await store.link_telegram(first, 555)
    await store.set_telegram_reachable(first, False)
    linked = await store.link_telegram(second, 555)
    assert linked.telegram_chat_id == 555
    assert linked.telegram_reachable
    assert (await store.get_client(first)).telegram_chat_id is None
    assert (await store.find_client_by_chat(555)) == linked


async def test_tasks_are_created_once_updated_and_listed(store: SqlHistoryStore) -> None:
    cid = await _client(store)
    due = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    new = NewTask(client_id=cid, kind="detractor", title="Перезвонить", due_at=due, dedup_key="k")
    task = await store.create_task(new)
    assert (await store.create_task(new)).id == task.id
    done = await store.update_task(task.id, status=TaskStatus.DONE, assignee="anna")
    assert done.status is TaskStatus.DONE
    assert done.assignee == "anna"
    assert await store.list_tasks(status=TaskStatus.OPEN) == []
    assert [t.id for t in await store.list_tasks(assignee="anna")] == [task.id]
