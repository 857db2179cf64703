"""Timeline events pushed to (fake) Bitrix24 over HTTP: contacts found or created, each event
once, tasks as to-dos, refusals recorded with the CRM's reason."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.history.store import ClientInput
from crm_sync.outbound.tables import CrmContactRow
from povtor.domain import EventKind
from povtor.ports import NewEvent
from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import Timeline, bitrix_sync, push_rows

pytestmark = pytest.mark.crm

KEY = re.compile(r"\[povtor:(\d+)\]")


def keys(fake: FakeBitrix24) -> Counter[str]:
    """Event keys found in every comment and to-do of the portal (each must appear once)."""
    texts = [c["COMMENT"] for c in fake.portal.comments.values()]
    texts += [a["DESCRIPTION"] for a in fake.portal.activities.values()]
    return Counter(k for t in texts for k in KEY.findall(t))


async def test_events_reach_the_contact_found_by_phone_or_a_new_one_once_each(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    known = bitrix.add_contact("Иван Иванов", phones=("8 (916) 123-45-67",))
    ivan = await timeline.client("Иван Иванов", "+79161234567")
    anna = await timeline.client("Петрова Анна Сергеевна", "+79035550011")
    await timeline.nps(ivan, 3, "Долго везли")
    await timeline.complaint(ivan, "Курьер нагрубил")
    await timeline.not_pushed(ivan, 1)
    await timeline.outcome(anna, attempt_id=7)
    await timeline.task(anna, "Перезвонить клиенту")
    await timeline.opt_out(anna)
    sync = bitrix_sync(sessions, db_url, bitrix)

    first = await sync.sync_once()
    again = await sync.sync_once()
    await sync.connector.aclose()

    assert (first.pushed, first.failed, first.retried) == (timeline.pushable, 0, 0)
    assert (again.pushed, again.queued) == (0, 0)
    assert set(keys(bitrix).values()) == {1}
    assert len(keys(bitrix)) == timeline.pushable
    ivan_notes = bitrix.comments_of(known)
    assert any(
        "Оценка NPS: 3 из 10 (критик)" in t
        and "Причина: «Долго везли»" in t
        and "Категория: доставка" in t
        for t in ivan_notes
    )
    assert any("Жалоба клиента: «Курьер нагрубил»" in t for t in ivan_notes)
    [created] = [c for c in bitrix.portal.contacts.values() if c["ID"] != str(known)]
    assert (created["NAME"], created["LAST_NAME"], created["SECOND_NAME"]) == (
        "Анна",
        "Петрова",
        "Сергеевна",
    )
    assert [p["VALUE"] for p in created["PHONE"]] == ["+79035550011"]
    assert (created["ORIGINATOR_ID"], created["ORIGIN_ID"]) == ("povtor", "C2")
    [todo] = bitrix.portal.activities.values()
    assert (todo["OWNER_ID"], todo["SUBJECT"]) == (created["ID"], "Перезвонить клиенту")
    assert any("отказался от контактов" in t for t in bitrix.comments_of(int(created["ID"])))
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}
    assert all(r.remote_id for r in rows)
    assert bitrix.count("crm.timeline.comment.add") == timeline.pushable - 1
    assert bitrix.count("crm.timeline.comment.list") == 0  # nothing was in doubt


async def test_later_events_use_the_remembered_contact_without_a_new_lookup(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 10)
    sync = bitrix_sync(sessions, db_url, bitrix)
    await sync.sync_once()
    lookups = bitrix.count("crm.duplicate.findbycomm")

    await timeline.complaint(ivan, "Не перезвонили")
    report = await sync.sync_once()
    await sync.connector.aclose()

    assert report.pushed == 1
    assert bitrix.count("crm.duplicate.findbycomm") == lookups == 1
    assert bitrix.count("crm.contact.add") == 1
    async with sessions() as session:
        [cached] = await session.scalars(select(CrmContactRow))
    assert (cached.connector, cached.client_id, cached.created) == ("bitrix24", ivan, True)


async def test_refused_and_malformed_events_fail_with_a_reason_while_the_rest_go_on(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    bitrix.refuse(
        "crm.timeline.comment.add",
        lambda p: "нецензурно" in str(p.get("fields", {}).get("COMMENT")),
        "ERROR_CORE",
        "Комментарий отклонён бизнес-процессом портала",
    )
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 9)
    await timeline.complaint(ivan, "нецензурно о курьере")
    await timeline.store.append_event(  # a task event whose task is not in the store
        NewEvent(ivan, EventKind.TASK, "Задача: ?", ref="task:999999", data={"kind": "x"})
    )
    await timeline.outcome(ivan, attempt_id=3)
    sync = bitrix_sync(sessions, db_url, bitrix)

    report = await sync.sync_once()

    assert (report.pushed, report.failed) == (2, 2)
    rows = {r.kind: r for r in await push_rows(sessions)}
    assert rows["nps"].state == rows["outcome"].state == "done"
    refused, malformed = rows["complaint"], rows["task"]
    assert (refused.state, refused.attempts) == ("failed", 1)
    assert "ERROR_CORE" in (refused.last_error or "")
    assert "отклонён бизнес-процессом" in (refused.last_error or "")
    assert malformed.state == "failed"
    assert "task:999999" in (malformed.last_error or "")
    assert "not in the store" in (malformed.last_error or "")

    bitrix.refusals.clear()  # the portal's rule was changed; a manager asks to try again
    assert await sync.state.retry_failed(sync._clock(), [refused.event_id]) == 1
    retried = await sync.sync_once()
    await sync.connector.aclose()
    assert (retried.pushed, retried.failed) == (1, 0)
    assert keys(bitrix) == Counter({str(r.event_id): 1 for r in rows.values() if r.kind != "task"})


async def test_a_contact_deleted_in_the_crm_is_found_or_created_again(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 8)
    sync = bitrix_sync(sessions, db_url, bitrix)
    await sync.sync_once()
    [first] = bitrix.portal.contacts
    bitrix.delete_contact(first)

    await timeline.complaint(ivan, "Опять опоздали")
    report = await sync.sync_once()
    await sync.connector.aclose()

    assert (report.pushed, report.failed) == (1, 0)
    [second] = bitrix.portal.contacts
    assert second != first
    assert any("Опять опоздали" in t for t in bitrix.comments_of(second))
    async with sessions() as session:
        [cached] = await session.scalars(select(CrmContactRow))
    assert cached.remote_id == str(second)


async def test_clients_imported_from_the_crm_keep_their_contact_ids(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    bitrix.add_contact("Сначала другой")
    contact = bitrix.add_contact("Иван из Битрикса", phones=("+74950000000",))
    client = await timeline.store.create_client(
        ClientInput(str(contact), name="Иван", phones=("+79161234567",))
    )
    await timeline.complaint(client.id, "Жалоба")
    sync = bitrix_sync(sessions, db_url, bitrix, external_id_is_crm_id=True)

    report = await sync.sync_once()
    await sync.connector.aclose()

    assert report.pushed == 1
    assert bitrix.comments_of(contact)
    assert bitrix.count("crm.contact.add") == bitrix.count("crm.duplicate.findbycomm") == 0


async def test_one_worker_syncs_a_crm_at_a_time(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 5)
    first = bitrix_sync(sessions, db_url, bitrix, owner="worker-1")
    second = bitrix_sync(sessions, db_url, bitrix, owner="worker-2")

    held = await first.round()
    refused = await second.sync_once()
    await first.tail.release("worker-1", first._clock())
    taken = await second.sync_once()
    for sync in (first, second):
        await sync.connector.aclose()

    assert held.held
    assert held.pushed == 1
    assert not refused.held
    assert taken.held
    assert taken.pushed == 0
