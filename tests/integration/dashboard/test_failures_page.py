"""The page of failures: dead letters of every durable queue (a push the CRM refused, a message
Telegram refused, a recording that could not be transcribed) shown to managers, and the CRM
push put back in its queue from the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.outbox_dead import OutboxDeadLetters
from bot.outbox_store import OutboxStore
from bot.records import SendStatus
from crm_sync.history.store import SqlHistoryStore
from crm_sync.outbound.dead import CrmDeadLetters
from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import push_rows
from tests.integration.dashboard.conftest import Dashboard, csrf_of, serving
from tests.integration.dashboard.test_crm_page import REFUSED, _refused_complaints
from voice.transcript_dead import TranscriptDeadLetters
from voice.transcripts import TranscriptStore

pytestmark = pytest.mark.crm

MESSAGE_REFUSED = "Bad Request: message is too long"
NOT_DECODED = "audio cannot be decoded: unsupported format"


@pytest.fixture
async def failures_dash(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    db_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Dashboard]:
    queues = [
        CrmDeadLetters(sessions, "bitrix24"),
        OutboxDeadLetters(sessions),
        TranscriptDeadLetters(sessions),
    ]
    async with serving(engine, store, db_url, tmp_path, dead_letters=queues) as d:
        yield d


def _section(html: str, queue: str) -> str:
    start = html.index(f'data-queue="{queue}"')
    return html[start : html.index("</section>", start)]


async def test_manager_sees_every_queues_dead_letters_and_retries_the_crm_push(
    db_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    failures_dash: Dashboard,
) -> None:
    _ivan, [event_id] = await _refused_complaints(db_url, sessions, bitrix, failures_dash.store)
    [push] = [r for r in await push_rows(sessions) if r.event_id == event_id]
    repo = OutboxStore(sessions)
    message = await repo.add_outbox(chat_id=77, purpose="reply", text="…")
    await repo.mark_outbox(message.id, SendStatus.FAILED, error=MESSAGE_REFUSED, tries=1)
    sent = await repo.add_outbox(chat_id=78, purpose="reply", text="…")
    await repo.mark_outbox(sent.id, SendStatus.SENT, message_id=5)
    await TranscriptStore(engine).save_failed("ab" * 32, "2026/03/call.wav", NOT_DECODED)

    async with await failures_dash.signed_in("anna") as http:
        async with http.get("/failures") as page:
            assert page.status == 200
            html = await page.text()
        crm = _section(html, "crm")
        assert "Передача в CRM" in crm
        assert f'data-id="{push.id}"' in crm
        assert REFUSED in crm
        assert "Повторить" in crm
        telegram = _section(html, "telegram")
        assert f'data-id="{message.id}"' in telegram
        assert f'data-id="{sent.id}"' not in telegram
        assert MESSAGE_REFUSED in telegram
        assert "Повторить" not in telegram
        assert NOT_DECODED in _section(html, "transcripts")
        csrf = csrf_of(html)

        form = {"_csrf": csrf, "queue": "telegram", "id": str(message.id)}
        async with http.post("/failures/retry", data=form, allow_redirects=False) as response:
            assert response.status == 404
        form = {"_csrf": csrf, "queue": "crm", "id": str(push.id)}
        async with http.post("/failures/retry", data=form, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/failures?retried=1"
        async with http.get("/failures?retried=1") as page:
            html = await page.text()
        assert "Снова поставлено в очередь: 1." in html
        assert f'data-id="{push.id}"' not in _section(html, "crm")
    [after] = [r for r in await push_rows(sessions) if r.event_id == event_id]
    assert (after.state, after.attempts) == ("pending", 0)


async def test_viewer_sees_dead_letters_but_cannot_retry_them(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    failures_dash: Dashboard,
) -> None:
    await _refused_complaints(db_url, sessions, bitrix, failures_dash.store)
    async with await failures_dash.signed_in("vera") as http:
        async with http.get("/failures") as page:
            html = await page.text()
        assert REFUSED in _section(html, "crm")
        assert "Повторить" not in html
        form = {"_csrf": csrf_of(html), "queue": "crm", "all": "1"}
        async with http.post("/failures/retry", data=form, allow_redirects=False) as response:
            assert response.status == 403
    assert {r.state for r in await push_rows(sessions)} == {"done", "failed"}
