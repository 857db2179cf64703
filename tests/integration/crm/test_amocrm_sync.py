"""Timeline events pushed to (fake) amoCRM over HTTP: contacts by phone, notes and tasks once
each, OAuth tokens refreshed and rotated (and kept across restarts), 429s waited out."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.connectors.amocrm_auth import Tokens
from crm_sync.outbound.tables import CrmTokenRow
from tests.fakes.amocrm_api import FakeAmoCrm
from tests.integration.crm.conftest import T0, Timeline, amo_sync, push_rows, running, settled

pytestmark = pytest.mark.crm

KEY = re.compile(r"\[povtor:(\d+)\]")


def keys(fake: FakeAmoCrm) -> Counter[str]:
    texts = [n["params"]["text"] for n in fake.account.notes.values()]
    texts += [t["text"] for t in fake.account.tasks.values()]
    return Counter(k for t in texts for k in KEY.findall(t))


async def test_events_reach_the_contact_found_by_phone_or_a_new_one_once_each(
    db_url: str, sessions: async_sessionmaker[AsyncSession], amo: FakeAmoCrm, timeline: Timeline
) -> None:
    known = amo.add_contact("Иван Иванов", phones=("+7 (916) 123-45-67",))
    amo.add_contact("Иван Тёзка", phones=("+7 (926) 123-45-67",))  # same last 10? no: 926
    ivan = await timeline.client("Иван Иванов", "+79161234567")
    anna = await timeline.client("Петрова Анна Сергеевна", "+79035550011")
    await timeline.nps(ivan, 9)
    await timeline.complaint(ivan, "Курьер опоздал")
    await timeline.not_pushed(ivan, 1)
    await timeline.task(anna, "Перезвонить")
    await timeline.outcome(anna, attempt_id=5, outcome="no_answer")
    sync = amo_sync(sessions, db_url, amo, Tokens(amo.long_lived_token()), oauth=False)

    first = await sync.sync_once()
    again = await sync.sync_once()
    await sync.connector.aclose()

    assert (first.pushed, first.failed, again.pushed) == (timeline.pushable, 0, 0)
    assert keys(amo) == Counter({k: 1 for k in keys(amo)})
    assert len(keys(amo)) == timeline.pushable
    notes = amo.notes_of(known)
    assert any("Оценка NPS: 9 из 10 (промоутер)" in t for t in notes)
    assert any("Жалоба клиента: «Курьер опоздал»" in t for t in notes)
    [created] = [c for c in amo.account.contacts.values() if c["name"] == "Петрова Анна Сергеевна"]
    [phones] = [f for f in created["custom_fields_values"] if f["field_code"] == "PHONE"]
    assert [v["value"] for v in phones["values"]] == ["+79035550011"]
    [task] = amo.account.tasks.values()
    assert (task["entity_id"], task["entity_type"]) == (created["id"], "contacts")
    assert task["text"].startswith("Перезвонить\n")
    assert task["complete_till"] > int(T0.timestamp())
    assert {n["note_type"] for n in amo.account.notes.values()} == {"common"}
    assert {r.state for r in await push_rows(sessions)} == {"done"}


async def test_an_expired_token_is_refreshed_once_and_the_rotated_pair_survives_a_restart(
    db_url: str, sessions: async_sessionmaker[AsyncSession], amo: FakeAmoCrm, timeline: Timeline
) -> None:
    access, refresh = amo.grant()
    configured = Tokens(access, refresh)
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 7)
    sync = amo_sync(sessions, db_url, amo, configured)
    await sync.sync_once()
    await sync.connector.aclose()

    amo.expire_access_tokens()
    await timeline.complaint(ivan, "Не привезли")
    restarted = amo_sync(sessions, db_url, amo, configured)  # same settings, new process
    after_expiry = await restarted.sync_once()
    await restarted.connector.aclose()
    async with sessions() as session:
        [stored] = await session.scalars(select(CrmTokenRow))

    assert after_expiry.pushed == 1
    assert amo.refreshes == 1
    assert refresh in amo.revoked
    assert stored.refresh_token in amo.refresh_tokens  # the rotated one, saved
    assert stored.access_token != access

    amo.expire_access_tokens()
    await timeline.complaint(ivan, "Снова не привезли")
    again = amo_sync(sessions, db_url, amo, configured)  # still the old token in settings
    last = await again.sync_once()
    await again.connector.aclose()

    assert last.pushed == 1
    assert amo.refreshes == 2  # refreshed with the stored token, not the revoked one
    assert amo.count("POST /oauth2/access_token", 400) == 0
    assert len(keys(amo)) == timeline.pushable


async def test_a_revoked_refresh_token_keeps_events_pending_with_a_readable_error(
    db_url: str, sessions: async_sessionmaker[AsyncSession], amo: FakeAmoCrm, timeline: Timeline
) -> None:
    access, refresh = amo.grant()
    amo.refresh_tokens.discard(refresh)
    amo.revoked.add(refresh)
    amo.expire_access_tokens()
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 2, "Грубый менеджер")
    sync = amo_sync(sessions, db_url, amo, Tokens(access, refresh))

    report = await sync.sync_once()
    await sync.connector.aclose()

    assert (report.pushed, report.failed, report.retried) == (0, 0, 1)
    [row] = await push_rows(sessions)
    assert row.state == "pending"
    assert "amoCRM refused the refresh token" in (row.last_error or "")
    assert "Token has been revoked" in (row.last_error or "")
    assert "POVTOR_CRM_AMOCRM_REFRESH_TOKEN" in (row.last_error or "")
    assert refresh not in (row.last_error or "")


async def test_429_answers_are_waited_out_and_nothing_is_doubled(
    db_url: str, sessions: async_sessionmaker[AsyncSession], timeline: Timeline
) -> None:
    fake = FakeAmoCrm(rate_limit=4)
    await fake.start()
    try:
        for n in range(2):
            client = await timeline.client(f"Клиент {n}", f"+7916000{n:04d}")
            await timeline.nps(client, 10)
            await timeline.task(client, f"Позвонить {n}")
        sync = amo_sync(sessions, db_url, fake, Tokens(fake.long_lived_token()), oauth=False)
        async with running(sync):
            await settled(sync)
    finally:
        await fake.stop()

    assert sum(1 for r in fake.received if r.status == 429) > 0
    assert keys(fake) == Counter({k: 1 for k in keys(fake)})
    assert len(keys(fake)) == timeline.pushable
    rows = await push_rows(sessions)
    assert {r.state for r in rows} == {"done"}
    assert {r.attempts for r in rows} == {0}


async def test_a_lost_note_answer_is_looked_up_not_repeated(
    db_url: str, sessions: async_sessionmaker[AsyncSession], amo: FakeAmoCrm, timeline: Timeline
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 6)
    await timeline.task(ivan, "Перезвонить")
    amo.lose_answers(1, {"POST /contacts/notes"})
    amo.lose_answers(1, {"POST /tasks"})
    sync = amo_sync(sessions, db_url, amo, Tokens(amo.long_lived_token()), oauth=False)

    async with running(sync):
        await settled(sync)

    assert keys(amo) == Counter({k: 1 for k in keys(amo)})
    assert amo.count("GET /contacts/{id}/notes") == 1
    assert {r.state for r in await push_rows(sessions)} == {"done"}
