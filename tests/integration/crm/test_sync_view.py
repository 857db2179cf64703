"""SqlCrmSyncView (the dashboard's port on the CRM sync) over real syncs against the fake
Bitrix24, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.outbound.view import SqlCrmSyncView
from povtor.db import utcnow
from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import Timeline, bitrix_sync, push_rows

pytestmark = pytest.mark.crm


async def test_summary_failures_and_retry_follow_a_sync_with_a_refused_event(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    view = SqlCrmSyncView(sessions, "bitrix24")
    empty = await view.summary()
    assert empty.connector == "bitrix24"
    assert dict(empty.counts) == {"pending": 0, "sending": 0, "done": 0, "failed": 0}
    assert (empty.last_pushed_at, empty.oldest_pending_at, empty.worker) == (None, None, None)

    bitrix.refuse(
        "crm.timeline.comment.add",
        lambda p: "курьер" in str(p.get("fields", {}).get("COMMENT")),
        "ERROR_CORE",
        "Отклонено",
    )
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 10)
    await timeline.complaint(ivan, "Курьер нагрубил, курьер опоздал")
    before = utcnow()
    sync = bitrix_sync(sessions, db_url, bitrix)
    await sync.sync_once()

    summary = await view.summary()
    assert dict(summary.counts) == {"pending": 0, "sending": 0, "done": 1, "failed": 1}
    assert summary.last_pushed_at is not None
    assert before <= summary.last_pushed_at <= utcnow()
    assert (summary.oldest_pending_at, summary.retrying, summary.next_try_at) == (None, 0, None)
    assert summary.worker is None  # sync --once let the lease go

    [failure] = await view.failures()
    complaint = next(r for r in await push_rows(sessions) if r.kind == "complaint")
    assert (failure.event_id, failure.client_id, failure.kind) == (
        complaint.event_id,
        ivan,
        "complaint",
    )
    assert failure.attempts == 1
    assert "ERROR_CORE" in failure.error
    assert "Отклонено" in failure.error
    assert await view.failures(before_id=failure.id) == []

    assert await view.retry([]) == 0  # nothing chosen is not "everything"
    assert await view.retry([complaint.event_id + 1000]) == 0
    assert await view.retry(None) == 1
    assert await view.failures() == []
    again = await view.summary()
    assert again.counts["pending"] == 1
    assert again.oldest_pending_at == complaint.created_at

    await sync.tail.acquire("worker-7", utcnow(), timedelta(minutes=2), backfill=True)
    held = await view.summary()
    assert held.worker == "worker-7"
    assert held.lease_until is not None
    await sync.connector.aclose()


async def test_a_crm_refusing_credentials_shows_as_retrying_with_the_next_try(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
) -> None:
    bitrix.refuse("crm.timeline.comment.add", lambda p: True, "INVALID_CREDENTIALS", "no")
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.complaint(ivan, "Долго везли")
    sync = bitrix_sync(sessions, db_url, bitrix, retry_backoff_s=600.0, retry_max_s=600.0)
    started = utcnow()
    await sync.sync_once()
    await sync.connector.aclose()

    summary = await SqlCrmSyncView(sessions, "bitrix24").summary()
    assert summary.counts["pending"] == 1
    assert summary.retrying == 1
    assert summary.next_try_at is not None
    assert summary.next_try_at >= started + timedelta(seconds=600)
    assert summary.oldest_pending_at is not None
    assert summary.oldest_pending_at <= utcnow()


async def test_without_a_connector_there_is_nothing_to_show_or_retry(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    view = SqlCrmSyncView(sessions, None)
    summary = await view.summary()
    assert (summary.connector, dict(summary.counts)) == (None, {})
    assert await view.failures() == []
    assert await view.retry(None) == 0
