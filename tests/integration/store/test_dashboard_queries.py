"""Store reads the manager dashboard needs, on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore, client_matches
from crm_sync.history.tables import ClientRow
from povtor.db import autocommit_reads
from povtor.domain import ChannelKind, EventKind, NpsGroup, OrderItem, ReasonCategory, TaskStatus
from povtor.errors import NotFound
from povtor.ports import ClientFilter, NewEvent, NewNpsResponse, NewTask, NpsCursor, NpsQuery

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _clients(store: SqlHistoryStore) -> list[int]:
    people = [
        ("C1", "Иван Петров", ("+79161234567",)),
        ("C2", "Мария Иванова", ("+79035550011", "+79260001122")),
        ("C3", "ООО Ромашка", ()),
        ("C4", "John Smith_%", ("+79990000000",)),
    ]
    ids = []
    for ext, name, phones in people:
        ids.append((await store.create_client(ClientInput(ext, name=name, phones=phones))).id)
    return ids


async def test_search_finds_cyrillic_names_in_any_case(store: SqlHistoryStore) -> None:
    c1, c2, _, _ = await _clients(store)
    assert [c.id for c in await store.search_clients("иван")] == [c1, c2]
    assert [c.id for c in await store.search_clients("ПЕТРОВ")] == [c1]


async def test_search_by_phone_digits_and_russian_eight_prefix(store: SqlHistoryStore) -> None:
    c1, c2, _, _ = await _clients(store)
    assert [c.id for c in await store.search_clients("8 (916) 123-45-67")] == [c1]
    assert [c.id for c in await store.search_clients("0001122")] == [c2]
    found = (await store.search_clients("+79260001122"))[0]
    assert found.phones == ("+79035550011", "+79260001122")


async def test_search_by_external_id_and_wildcards_are_literal(store: SqlHistoryStore) -> None:
    _, _, c3, c4 = await _clients(store)
    assert [c.id for c in await store.search_clients("C3")] == [c3]
    assert [c.id for c in await store.search_clients("_%")] == [c4]
    assert await store.search_clients("нет такого") == []


async def test_search_pages_by_id_keyset(store: SqlHistoryStore) -> None:
    ids = await _clients(store)
    first = await store.search_clients("", limit=3)
    assert [c.id for c in first] == ids[:3]
    rest = await store.search_clients("", after_id=first[-1].id, limit=3)
    assert [c.id for c in rest] == ids[3:]


async def test_client_list_rows_carry_their_phones_primary_first(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    c1, c2, c3, c4 = await _clients(store)
    rows = await SqlRetentionView(engine, store).list_clients(ClientFilter(), limit=10)
    assert {r.id: r.phones for r in rows} == {
        c1: ("+79161234567",),
        c2: ("+79035550011", "+79260001122"),
        c3: (),
        c4: ("+79990000000",),
    }


async def test_get_clients_loads_many_with_phones(store: SqlHistoryStore) -> None:
    c1, c2, c3, _ = await _clients(store)
    found = await store.get_clients([c2, c3, 999_999, c2])
    assert set(found) == {c2, c3}
    assert found[c2].phones == ("+79035550011", "+79260001122")
    assert found[c3].phones == ()
    assert await store.get_clients([]) == {}
    assert c1 not in found


async def _answers(store: SqlHistoryStore, client_id: int) -> None:
    rows = [
        (10, None, 0),
        (9, None, 1),
        (8, ReasonCategory.PRICE, 2),
        (3, ReasonCategory.DELIVERY, 3),
        (6, ReasonCategory.PRICE, 4),
        (None, None, 5),
        (0, ReasonCategory.PRICE, 5),  # same time as the previous: the id breaks the tie
    ]
    for score, category, days in rows:
        await store.record_nps(
            NewNpsResponse(
                client_id,
                score,
                ChannelKind.CALL,
                reason_text="дорого" if category is ReasonCategory.PRICE else None,
                reason_category=category,
                answered_at=T0 + timedelta(days=days),
            )
        )


async def test_nps_answers_filter_by_group_category_and_period(store: SqlHistoryStore) -> None:
    c1, *_ = await _clients(store)
    await _answers(store, c1)
    detractors = await store.list_nps_answers(NpsQuery(group=NpsGroup.DETRACTOR))
    assert [a.score for a in detractors] == [0, 6, 3]
    promoters = await store.list_nps_answers(NpsQuery(group=NpsGroup.PROMOTER))
    assert [a.score for a in promoters] == [9, 10]
    price = await store.list_nps_answers(NpsQuery(category=ReasonCategory.PRICE))
    assert [a.score for a in price] == [0, 6, 8]
    window = NpsQuery(since=T0 + timedelta(days=2), until=T0 + timedelta(days=4))
    assert [a.score for a in await store.list_nps_answers(window)] == [3, 8]
    everything = await store.list_nps_answers(NpsQuery(client_id=c1))
    assert len(everything) == 7
    assert await store.list_nps_answers(NpsQuery(client_id=c1 + 100)) == []


async def test_nps_answers_keyset_pages_cover_everything_once(store: SqlHistoryStore) -> None:
    c1, *_ = await _clients(store)
    await _answers(store, c1)
    seen: list[int] = []
    cursor: NpsCursor | None = None
    while True:
        page = await store.list_nps_answers(NpsQuery(), before=cursor, limit=2)
        if not page:
            break
        seen.extend(a.id for a in page)
        cursor = NpsCursor(page[-1].answered_at, page[-1].id)
    everything = await store.list_nps_answers(NpsQuery(), limit=100)
    assert seen == [a.id for a in everything]
    assert len(set(seen)) == 7


async def test_tasks_counted_fetched_and_listed_per_client(store: SqlHistoryStore) -> None:
    c1, c2, *_ = await _clients(store)
    due = T0 + timedelta(days=1)
    early = await store.create_task(NewTask(c1, "detractor", "Позвонить", due))
    late = await store.create_task(NewTask(c1, "callback", "Перезвонить", due + timedelta(1)))
    done = await store.create_task(NewTask(c1, "callback", "Старое", due - timedelta(days=9)))
    await store.create_task(NewTask(c2, "complaint", "Жалоба", due))
    await store.update_task(done.id, status=TaskStatus.DONE)
    await store.update_task(late.id, status=TaskStatus.IN_PROGRESS, assignee="anna")
    assert await store.count_tasks([TaskStatus.OPEN]) == 2
    assert await store.count_tasks([TaskStatus.OPEN, TaskStatus.IN_PROGRESS]) == 3
    assert (await store.get_task(late.id)).assignee == "anna"
    listed = await store.list_client_tasks(c1)
    assert [t.id for t in listed] == [early.id, late.id, done.id]
    c3 = (await _clients_more(store))[0]
    many = await store.tasks_of_clients([c2, c1, c3], limit=2)  # the overview's one read
    assert {c: [t.id for t in ts] for c, ts in many.items()} == {
        c1: [early.id, late.id],
        c2: [t.id for t in await store.list_client_tasks(c2)],
        c3: [],
    }
    assert many[c1] == list(listed[:2])


async def _clients_more(store: SqlHistoryStore) -> list[int]:
    return [(await store.create_client(ClientInput("C9", name="Без задач"))).id]


async def test_client_card_is_the_separate_reads_in_one(store: SqlHistoryStore) -> None:
    c1, c2, *_ = await _clients(store)
    for i in range(4):
        await store.record_nps(
            NewNpsResponse(c1, 3 + i, ChannelKind.TELEGRAM, answered_at=T0 + timedelta(hours=i))
        )
        await store.create_task(NewTask(c1, "callback", f"Задача {i}", T0 + timedelta(days=i)))
    await store.create_task(NewTask(c2, "callback", "Чужая", T0))
    for i in range(3):  # orders (a numeric with its scale, items, a delivery or none) in between
        await store.add_order(
            OrderInput(
                f"O{i}",
                "C1",
                T0 + timedelta(hours=i, minutes=30, microseconds=7),
                Decimal("1234.50") + i,
                delivered_at=T0 + timedelta(days=2) if i else None,
                items=(OrderItem("Вода 19 л", Decimal("2"), Decimal("300.25"), "W19", "вода"),),
            )
        )
    await store.append_event(
        NewEvent(c1, EventKind.COMPLAINT, "Жалоба", T0 + timedelta(hours=5), data={"x": [1, 2.5]})
    )
    first_task = (await store.list_client_tasks(c1))[0]
    await store.update_task(first_task.id, status=TaskStatus.DONE, note="Готово")
    events = await store.timeline(c1, limit=100)
    assert {e.kind for e in events[:8]} >= {EventKind.ORDER, EventKind.COMPLAINT}
    full = await store.client_card(c1, events=8, orders=2, answers=10, tasks=10)
    assert full.timeline == events[:8]
    assert full.orders == (await store.list_orders(c1, limit=2))
    assert [str(o.amount) for o in full.orders] == ["1236.50", "1235.50"]  # the scale kept
    assert {e.at.tzinfo for e in full.timeline} == {UTC}
    assert full.tasks == (await store.list_client_tasks(c1, limit=10))
    assert full.tasks[-1].status is TaskStatus.DONE  # finished tasks after the open ones
    assert full.answers == (await store.list_nps_answers(NpsQuery(client_id=c1), limit=10))
    card = await store.client_card(c1, events=3, answers=2, tasks=3)
    assert card.client == await store.get_client(c1)
    assert card.timeline == (await store.timeline(c1, limit=3))
    assert card.orders == (await store.list_orders(c1, limit=20))
    assert card.tasks == (await store.list_client_tasks(c1, limit=3))
    assert card.answers == (await store.list_nps_answers(NpsQuery(client_id=c1), limit=2))
    assert len(card.timeline) == 3
    assert len(card.answers) == 2
    older = await store.client_card(c1, before_id=events[2].id, events=50)
    assert older.timeline == list(events[3:])
    with pytest.raises(NotFound):
        await store.client_card(987654)
    only_tasks = await store.client_card(c1, events=0, orders=0, answers=0)  # the answer page
    assert only_tasks.tasks == (await store.list_client_tasks(c1))
    assert [only_tasks.timeline, only_tasks.orders, only_tasks.answers] == [[], [], []]


async def test_missing_task_raises_not_found(store: SqlHistoryStore) -> None:
    with pytest.raises(NotFound):
        await store.get_task(123456)


async def test_client_names_are_those_of_existing_clients(store: SqlHistoryStore) -> None:
    anna = await store.create_client(ClientInput("N-1", name="Анна"))
    nameless = await store.create_client(ClientInput("N-2"))
    names = await store.client_names([anna.id, nameless.id, anna.id, 999_999])
    assert names == {anna.id: "Анна", nameless.id: ""}
    assert await store.client_names([]) == {}


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_client_search_reads_few_clients_by_index_on_postgres(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    """A rare name and phone digits are found through the trigram indexes (crm_sync_0010),
    not by testing every client: the plan of the list's search names them."""
    await _clients(store)
    matches = client_matches("4567", case_folding=True)
    query = select(ClientRow.id).where(or_(*matches)).order_by(ClientRow.id).limit(51)
    sql = str(query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: force indexes
        plan = "\n".join(await conn.scalars(text(f"EXPLAIN {sql}")))
    assert "ix_clients_name_trgm" in plan
    assert "ix_client_phones_phone_trgm" in plan
    assert "SubPlan" not in plan  # no phone subquery tested client by client


async def test_named_nps_pages_are_the_plain_pages_with_the_clients_names(
    store: SqlHistoryStore,
) -> None:
    c1, c2, *_ = await _clients(store)
    await _answers(store, c1)
    await _answers(store, c2)
    window = NpsQuery(since=T0 + timedelta(days=2), until=T0 + timedelta(days=4))
    shapes = [
        NpsQuery(),
        NpsQuery(group=NpsGroup.DETRACTOR),
        NpsQuery(category=ReasonCategory.PRICE, group=NpsGroup.DETRACTOR),
        window,
        NpsQuery(client_id=c2),
    ]
    for query in shapes:  # each shape twice: its statement is built once and reused
        for _ in range(2):
            plain = await store.list_nps_answers(query, limit=100)
            named, names = await store.list_nps_answers_named(query, limit=100)
            assert named == plain
            assert names == await store.client_names([a.client_id for a in plain])
    assert (await store.list_nps_answers_named(NpsQuery(client_id=c2 + 100))) == ([], {})
    seen: list[int] = []
    cursor: NpsCursor | None = None
    while page := (await store.list_nps_answers_named(NpsQuery(), before=cursor, limit=3))[0]:
        seen.extend(a.id for a in page)
        cursor = NpsCursor(page[-1].answered_at, page[-1].id)
    assert seen == [a.id for a in await store.list_nps_answers(NpsQuery(), limit=100)]
    assert len(seen) == 14


async def test_named_task_pages_are_the_plain_pages_with_the_clients_names(
    store: SqlHistoryStore,
) -> None:
    c1, c2, *_ = await _clients(store)
    for i in range(5):
        client = c1 if i % 2 else c2
        await store.create_task(NewTask(client, "detractor", f"Задача {i}", T0 + timedelta(i)))
    await store.create_task(NewTask(None, "manual", "Без клиента", T0))
    first = await store.list_tasks(limit=3)
    shapes: list[dict[str, Any]] = [
        {},
        {"status": TaskStatus.OPEN},
        {"status": TaskStatus.DONE},
        {"assignee": "anna"},
        {"after": (first[-1].due_at, first[-1].id)},
    ]
    for shape in shapes:
        for _ in range(2):  # each shape's statement is built once and reused
            plain = await store.list_tasks(limit=3, **shape)
            named, names = await store.list_tasks_named(limit=3, **shape)
            assert named == plain
            ids = [t.client_id for t in plain if t.client_id is not None]
            assert names == await store.client_names(ids)
    everything, names = await store.list_tasks_named(limit=10)
    assert len(everything) == 6
    assert None in {t.client_id for t in everything}
    assert set(names) == {c1, c2}


async def test_reads_run_outside_a_transaction_on_postgres_writes_inside(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    reads = autocommit_reads(engine)
    if engine.dialect.name == "postgresql":
        # now() is the transaction's start: the same for every statement of a transaction
        now = text("SELECT now()")
        async with reads.connect() as conn:
            assert await conn.scalar(now) < await conn.scalar(now)
        async with engine.connect() as conn:
            assert await conn.scalar(now) == await conn.scalar(now)
    else:
        assert reads is engine
    c1, *_ = await _clients(store)
    # a write of two rows (the task and its timeline event) is still one transaction
    task = await store.create_task(NewTask(c1, "detractor", "Позвонить", T0))
    assert [t.id for t in await store.list_client_tasks(c1)] == [task.id]
    assert any(e.kind.value == "task" for e in await store.timeline(c1))
