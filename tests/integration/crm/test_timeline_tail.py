"""How the sync reads the timeline: which events, from where, and ids that become visible late
(PostgreSQL commits out of id order)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_sync.history.tables import EventRow
from crm_sync.outbound.selection import SyncKind
from povtor.db import is_sqlite
from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import (
    T0,
    Timeline,
    bitrix_sync,
    push_rows,
    running,
    settled,
)

pytestmark = pytest.mark.crm


async def test_an_event_committed_after_a_later_one_is_still_pushed(
    db_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    if is_sqlite(db_url):
        pytest.skip("SQLite writes one transaction at a time: ids become visible in order")
    ivan = await timeline.client("Иван", "+79161234567")
    sync = bitrix_sync(sessions, db_url, bitrix, gap_wait_s=600.0)
    async with engine.connect() as slow:
        tx = await slow.begin()  # takes its id first, commits last
        await slow.execute(
            insert(EventRow).values(
                client_id=ivan, kind="complaint", at=T0, summary="Поздняя жалоба"
            )
        )
        await timeline.complaint(ivan, "Ранняя жалоба")
        first = await sync.round()
        cursor_while_open = (await sync.state.status(sync.feed)).cursor
        await tx.commit()
    async with running(sync):  # until the gap is settled (other sessions' transactions too)
        await settled(sync)

    assert first.pushed == 1
    assert cursor_while_open is not None
    assert cursor_while_open < max(r.event_id for r in await push_rows(sessions))
    assert len(await push_rows(sessions)) == 2
    [contact] = bitrix.portal.contacts
    texts = bitrix.comments_of(contact)
    assert any("Ранняя жалоба" in t for t in texts)
    assert any("Поздняя жалоба" in t for t in texts)


async def test_only_the_configured_kinds_from_the_first_start_on_are_pushed(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 1, "До начала синхронизации")
    sync = bitrix_sync(sessions, db_url, bitrix, backfill=False, kinds=frozenset({SyncKind.NPS}))
    before = await sync.sync_once()  # the first start: from the newest event on
    await timeline.nps(ivan, 10)
    await timeline.complaint(ivan, "Не та упаковка")
    await timeline.opt_out(ivan)
    after = await sync.sync_once()
    await sync.connector.aclose()

    assert (before.queued, before.pushed) == (0, 0)
    assert (after.queued, after.pushed) == (1, 1)
    [row] = await push_rows(sessions)
    assert row.kind == "nps"
    [contact] = bitrix.portal.contacts
    [text] = bitrix.comments_of(contact)
    assert "Оценка NPS: 10 из 10" in text
