"""The CRM sync page: failed pushes (made by a real sync against the fake Bitrix24) shown to
managers with the reason, tried again from the page, and the overview's warning."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_sync.history.store import SqlHistoryStore
from crm_sync.outbound.view import SqlCrmSyncView
from povtor.db import session_factory
from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import Timeline, bitrix_sync, push_rows
from tests.integration.dashboard.conftest import Dashboard, csrf_of, serving

pytestmark = pytest.mark.crm

REFUSED = "Комментарий отклонён бизнес-процессом портала"


@pytest.fixture
async def bitrix() -> AsyncIterator[FakeBitrix24]:
    fake = FakeBitrix24(bucket_size=10_000, leak_per_s=10_000)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def crm_dash(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    db_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Dashboard]:
    async with serving(
        engine, store, db_url, tmp_path, crm=SqlCrmSyncView(sessions, "bitrix24")
    ) as d:
        yield d


async def _refused_complaints(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    store: SqlHistoryStore,
    complaints: int = 1,
) -> tuple[int, list[int]]:
    """Ivan's NPS answer pushed and his complaints refused by the portal: (client, event ids)."""
    bitrix.refuse(
        "crm.timeline.comment.add",
        lambda p: "курьер" in str(p.get("fields", {}).get("COMMENT")),
        "ERROR_CORE",
        REFUSED,
    )
    timeline = Timeline(store)
    ivan = await timeline.client("Иван Петров", "+79161234567")
    await timeline.nps(ivan, 9)
    for n in range(complaints):
        await timeline.complaint(ivan, f"Грубый курьер, случай {n + 1}")
    sync = bitrix_sync(sessions, db_url, bitrix)
    try:
        report = await sync.sync_once()
    finally:
        await sync.connector.aclose()
    assert (report.pushed, report.failed) == (1, complaints)
    failed = [r.event_id for r in await push_rows(sessions) if r.state == "failed"]
    return ivan, failed


def _comments_with_key(bitrix: FakeBitrix24, event_id: int) -> int:
    key = f"[povtor:{event_id}]"
    return sum(key in c["COMMENT"] for c in bitrix.portal.comments.values())


async def test_manager_sees_a_refused_push_retries_it_and_the_next_sync_pushes_it_once(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    crm_dash: Dashboard,
) -> None:
    ivan, [event_id] = await _refused_complaints(db_url, sessions, bitrix, crm_dash.store)
    async with await crm_dash.signed_in("anna") as http:
        async with http.get("/") as page:
            overview = await page.text()
        assert 'id="crm-warning"' in overview
        assert "Не удалось передать в CRM: 1\u00a0событие" in overview
        assert 'href="/crm"' in overview
        async with http.get("/crm") as page:
            assert page.status == 200
            html = await page.text()
        assert "Битрикс24" in html
        assert re.search(r'data-state="done"[^>]*>переданы: 1<', html)
        assert re.search(r'data-state="failed"[^>]*>с ошибкой: 1<', html)
        row = html[html.index(f'data-event="{event_id}"') :]
        row = row[: row.index("</tr>")]
        assert f'<a href="/clients/{ivan}#timeline">Иван Петров</a>' in row
        assert "жалоба" in row
        assert "ERROR_CORE" in row
        assert REFUSED in row
        assert "Повторить" in row
        assert "Повторить все" in html
        csrf = csrf_of(html)

        bitrix.refusals.clear()  # the portal's rule was fixed
        form = {"_csrf": csrf, "event_id": str(event_id)}
        async with http.post("/crm/retry", data=form, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/crm?retried=1"
        async with http.get("/crm?retried=1") as page:
            html = await page.text()
        assert "Снова поставлено в очередь: 1." in html
        assert f'data-event="{event_id}"' not in html
        assert re.search(r'data-state="pending"[^>]*>в очереди: 1<', html)
        [row_after] = [r for r in await push_rows(sessions) if r.event_id == event_id]
        assert (row_after.state, row_after.attempts) == ("pending", 0)

        sync = bitrix_sync(sessions, db_url, bitrix)
        try:
            report = await sync.sync_once()
            assert (report.pushed, report.failed) == (1, 0)
            assert (await sync.sync_once()).pushed == 0
        finally:
            await sync.connector.aclose()
        assert _comments_with_key(bitrix, event_id) == 1
        async with http.get("/") as page:
            assert 'id="crm-warning"' not in await page.text()
        async with http.get("/crm") as page:
            html = await page.text()
        assert "Ошибок нет" in html
        assert re.search(r'data-state="done"[^>]*>переданы: 2<', html)


async def test_retry_all_puts_every_failed_push_back_in_the_queue(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    crm_dash: Dashboard,
) -> None:
    _, failed = await _refused_complaints(db_url, sessions, bitrix, crm_dash.store, complaints=7)
    async with await crm_dash.signed_in("admin") as http:
        async with http.get("/crm") as page:
            html = await page.text()
        shown = re.findall(r'data-event="(\d+)"', html)
        assert len(shown) == crm_dash.settings.dashboard.page_size  # newest first, paged
        assert [int(e) for e in shown] == sorted(failed, reverse=True)[: len(shown)]
        next_page = re.search(r'href="(/crm\?before=\d+)" rel="next"', html)
        assert next_page
        async with http.get(next_page.group(1)) as page:
            rest = [int(e) for e in re.findall(r'data-event="(\d+)"', await page.text())]
        assert sorted([*map(int, shown), *rest]) == sorted(failed)
        form = {"_csrf": csrf_of(html), "all": "1"}
        async with http.post("/crm/retry", data=form, allow_redirects=False) as response:
            assert response.headers["Location"] == "/crm?retried=7"
    states = {r.event_id: r.state for r in await push_rows(sessions)}
    assert {states[e] for e in failed} == {"pending"}


async def test_viewer_sees_failures_without_buttons_and_a_retry_from_a_viewer_is_refused(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    crm_dash: Dashboard,
) -> None:
    _, [event_id] = await _refused_complaints(db_url, sessions, bitrix, crm_dash.store)
    async with await crm_dash.signed_in("vera") as http:
        async with http.get("/crm") as page:
            html = await page.text()
        assert REFUSED in html
        assert "Повторить" not in html
        csrf = csrf_of(html)  # the logout form's token: valid, but the role is not
        for form in ({"_csrf": csrf, "event_id": str(event_id)}, {"_csrf": csrf, "all": "1"}):
            async with http.post("/crm/retry", data=form, allow_redirects=False) as response:
                assert response.status == 403
    assert {r.state for r in await push_rows(sessions) if r.event_id == event_id} == {"failed"}


async def test_a_retry_without_the_form_token_is_refused(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    crm_dash: Dashboard,
) -> None:
    _, [event_id] = await _refused_complaints(db_url, sessions, bitrix, crm_dash.store)
    async with await crm_dash.signed_in("anna") as http:
        for form in ({"event_id": str(event_id)}, {"_csrf": "forged", "all": "1"}):
            async with http.post("/crm/retry", data=form, allow_redirects=False) as response:
                assert response.status == 403
    assert {r.state for r in await push_rows(sessions) if r.event_id == event_id} == {"failed"}


async def test_a_crm_refusing_credentials_shows_pushes_waiting_for_a_retry(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    crm_dash: Dashboard,
) -> None:
    bitrix.refuse("crm.timeline.comment.add", lambda p: True, "INVALID_CREDENTIALS", "no")
    timeline = Timeline(crm_dash.store)
    ivan = await timeline.client("Иван Петров", "+79161234567")
    await timeline.complaint(ivan, "Долго везли")
    sync = bitrix_sync(sessions, db_url, bitrix, retry_backoff_s=3600.0, retry_max_s=3600.0)
    try:
        assert (await sync.sync_once()).retried == 1
    finally:
        await sync.connector.aclose()
    async with await crm_dash.signed_in("anna") as http:
        async with http.get("/crm") as page:
            html = await page.text()
        assert 'id="crm-retrying"' in html
        assert "1\u00a0событие ждут повторной попытки" in html
        assert re.search(r'data-state="pending"[^>]*>в очереди: 1<', html)
        async with http.get("/") as page:
            assert 'id="crm-warning"' not in await page.text()  # nothing has given up yet


@pytest.mark.parametrize("configured", [False, True], ids=["no-view", "no-connector"])
async def test_without_a_crm_the_page_says_the_sync_is_off_and_how_to_turn_it_on(
    configured: bool,
    engine: AsyncEngine,
    store: SqlHistoryStore,
    db_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    crm = SqlCrmSyncView(sessions, None) if configured else None
    async with (
        serving(engine, store, db_url, tmp_path, crm=crm) as d,
        await d.signed_in("anna") as http,
    ):
        async with http.get("/crm") as page:
            assert page.status == 200
            html = await page.text()
        assert "Синхронизация с CRM выключена" in html
        assert "POVTOR_CRM_KIND=bitrix24" in html
        assert "Повторить" not in html
        async with http.get("/") as page:
            assert page.status == 200
            overview = await page.text()
        assert 'href="/crm"' in overview  # the navigation
        assert 'id="crm-warning"' not in overview
        async with http.post(
            "/crm/retry", data={"_csrf": csrf_of(html), "all": "1"}, allow_redirects=False
        ) as response:
            # nothing to retry: a view without a connector retries none
            assert response.status == (303 if configured else 404)
