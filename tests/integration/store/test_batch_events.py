"""Batch writes of the history store (a page of Telegram button presses at once), on SQLite
and PostgreSQL: each dedup key is written once, results come back in input order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.domain import EventKind, TaskStatus
from povtor.ports import NewEvent, NewTask


async def _clients(store: SqlHistoryStore, count: int) -> list[int]:
    return [
        (await store.create_client(ClientInput(external_id=f"C{i}", name=f"Клиент {i}"))).id
        for i in range(count)
    ]


def _press(client_id: int, n: int) -> NewEvent:
    return NewEvent(
        client_id=client_id,
        kind=EventKind.MESSAGE_IN,
        summary=f"Ответ в Telegram: «Не нужно» #{n}",
        ref=f"message:{n}",
        data={"button": "no", "n": n},
        dedup_key=f"press:{n}",
    )


async def test_append_events_writes_each_event_and_returns_them_in_order(
    store: SqlHistoryStore,
) -> None:
    ids = await _clients(store, 3)
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    batch = [_press(ids[n % 3], n) for n in range(250)]
    batch.append(NewEvent(client_id=ids[0], kind=EventKind.NOTE, summary="без ключа", at=at))
    events = await store.append_events(batch)
    assert [e.summary for e in events] == [e.summary for e in batch]
    assert [e.client_id for e in events] == [e.client_id for e in batch]
    assert events[7].data == {"button": "no", "n": 7}
    assert events[7].ref == "message:7"
    assert events[-1].at == at
    assert len({e.id for e in events}) == 251
    timeline = await store.timeline(ids[1], limit=500)
    assert sorted(e.id for e in timeline) == sorted(e.id for e in events if e.client_id == ids[1])


async def test_append_events_again_returns_the_stored_events_without_duplicates(
    store: SqlHistoryStore,
) -> None:
    [cid] = await _clients(store, 1)
    first = await store.append_events([_press(cid, n) for n in range(10)])
    # a redelivered page: old keys mixed with new ones, and one key twice in the same batch
    again = await store.append_events(
        [_press(cid, 3), _press(cid, 10), _press(cid, 3), _press(cid, 0)]
    )
    assert again[0] == first[3]
    assert again[2] == first[3]
    assert again[3] == first[0]
    assert again[1].id not in {e.id for e in first}
    assert len(await store.timeline(cid, limit=100)) == 11


async def test_append_events_agrees_with_append_event_on_dedup_keys(
    store: SqlHistoryStore,
) -> None:
    [cid] = await _clients(store, 1)
    single = await store.append_event(_press(cid, 1))
    [batched] = await store.append_events([_press(cid, 1)])
    assert batched == single
    assert await store.append_events([]) == []


async def test_concurrent_batches_with_the_same_keys_write_each_key_once(
    store: SqlHistoryStore,
) -> None:
    [cid] = await _clients(store, 1)
    batches = [[_press(cid, n) for n in range(k, k + 40)] for k in (0, 20, 10, 0)]
    results = await asyncio.gather(*(store.append_events(b) for b in batches))
    by_key: dict[str, int] = {}
    for batch, events in zip(batches, results, strict=True):
        for new, event in zip(batch, events, strict=True):
            assert by_key.setdefault(str(new.dedup_key), event.id) == event.id
    assert len(await store.timeline(cid, limit=100)) == 60


async def test_create_tasks_writes_tasks_with_their_timeline_events_once(
    store: SqlHistoryStore,
) -> None:
    ids = await _clients(store, 2)
    due = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)

    def task(n: int, key: str | None) -> NewTask:
        return NewTask(
            client_id=ids[n % 2],
            kind="reorder",
            title=f"Клиент нажал «Повторить заказ» #{n}",
            due_at=due + timedelta(hours=n),
            source_ref=f"telegram:message:{n}",
            dedup_key=key,
        )

    tasks = await store.create_tasks([task(n, f"press-task:{n}") for n in range(5)])
    assert [t.title for t in tasks] == [f"Клиент нажал «Повторить заказ» #{n}" for n in range(5)]
    assert all(t.status is TaskStatus.OPEN for t in tasks)
    assert tasks[3].due_at == due + timedelta(hours=3)
    again = await store.create_tasks(
        [task(1, "press-task:1"), task(9, None), task(1, "press-task:1")]
    )
    assert again[0] == tasks[1]
    assert again[2] == tasks[1]
    assert again[1].id not in {t.id for t in tasks}
    assert len(await store.list_tasks(limit=100)) == 6
    events = [
        e for cid in ids for e in await store.timeline(cid, limit=100) if e.kind is EventKind.TASK
    ]
    assert sorted(e.ref or "" for e in events) == sorted(
        f"task:{t.id}" for t in [*tasks, again[1]]
    )
    assert await store.create_tasks([]) == []
