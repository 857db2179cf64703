"""What managers read: overview, NPS answers, clients and the client card, users (admins)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp

from crm_sync.history.store import ClientInput
from dashboard.roles import Role
from povtor.domain import ChannelKind, EventKind, ReasonCategory
from povtor.ports import NewEvent, NewNpsResponse, NewTask
from tests.integration.dashboard.conftest import PASSWORD, Dashboard, csrf_of

ANSWER_RE = re.compile(r'data-answer="(\d+)"')
EVENT_RE = re.compile(r'data-event="(\d+)"')
NEXT_RE = re.compile(r'<a href="([^"]+)" rel="next">')


def _next(html: str) -> str | None:
    match = NEXT_RE.search(html)
    return match.group(1).replace("&amp;", "&") if match else None


async def _all_pages(http: aiohttp.ClientSession, url: str | None) -> tuple[list[str], str]:
    """Follows "next" links; the ids of every answer seen and all the pages' HTML."""
    ids: list[str] = []
    pages = ""
    while url:
        async with http.get(url) as page:
            assert page.status == 200
            html = await page.text()
        found = ANSWER_RE.findall(html)
        assert len(found) <= 5  # page_size of the test settings
        ids.extend(found)
        pages += html
        url = _next(html)
    return ids, pages


async def _scores(dash: Dashboard) -> int:
    """One client with 12 answers in the last days: 4 promoters, 2 passives, 6 detractors."""
    client = await dash.store.create_client(ClientInput("C1", name="Иван Петров"))
    now = datetime.now(UTC)
    scores = [10, 9, 9, 10, 7, 8, 0, 3, 5, 6, 6, 2]
    for i, score in enumerate(scores):
        category = ReasonCategory.DELIVERY if score == 6 else ReasonCategory.PRICE
        await dash.store.record_nps(
            NewNpsResponse(
                client.id,
                score,
                ChannelKind.CALL if i % 2 else ChannelKind.TELEGRAM,
                reason_text=f"ответ {i}" if score <= 6 else None,
                reason_category=category if score <= 6 else None,
                answered_at=now - timedelta(hours=i + 1),
            )
        )
    old = now - timedelta(days=200)
    await dash.store.record_nps(
        NewNpsResponse(client.id, 1, ChannelKind.CALL, reason_text="давно", answered_at=old)
    )
    return client.id


async def test_overview_shows_nps_groups_open_tasks_and_recent_detractors(
    dash: Dashboard,
) -> None:
    client_id = await _scores(dash)
    due = datetime.now(UTC) + timedelta(days=1)
    for title in ("Позвонить", "Написать"):
        await dash.store.create_task(NewTask(client_id, "detractor", title, due))
    async with await dash.signed_in("vera") as http, http.get("/") as page:
        html = await page.text()
    # 4 promoters, 6 detractors of 12 scored answers in 30 days: NPS = -17
    assert '<p class="big" id="nps-now">-17</p>' in html
    assert 'id="open-tasks">2</a>' in html
    assert "ответ 11" in html  # a recent detractor's comment
    assert "давно" not in html  # 200 days ago is not recent
    assert html.count('<circle class="point"') >= 1  # the month trend
    assert "База данных: доступна" in html
    assert "Звонки: выключены (POVTOR_SIP_ENABLED)" in html


async def test_nps_list_filters_by_group_category_and_period(dash: Dashboard) -> None:
    await _scores(dash)
    async with await dash.signed_in("vera") as http:
        ids, html = await _all_pages(http, "/nps?group=detractor&period=all")
        assert len(ids) == 7
        assert "давно" in html  # period=all reaches 200 days back
        ids, html = await _all_pages(http, "/nps?group=detractor&period=30")
        assert len(ids) == 6
        assert "давно" not in html
        assert "ответ 6" in html
        assert 'score-promoter">' not in html
        async with http.get("/nps?category=delivery&period=30") as page:
            html = await page.text()
        assert len(ANSWER_RE.findall(html)) == 2  # the two 6s
        assert "доставка" in html
        async with http.get("/nps?group=promoter&period=7") as page:
            html = await page.text()
        assert "ответ" not in html
        assert len(ANSWER_RE.findall(html)) == 4
        async with http.get("/nps?group=nonsense&category=%3Cscript%3E") as page:
            assert page.status == 200  # unknown filters are ignored, never echoed


async def test_nps_list_pages_through_every_answer_once(dash: Dashboard) -> None:
    await _scores(dash)
    async with await dash.signed_in("vera") as http:
        seen, _ = await _all_pages(http, "/nps?period=all")
    assert len(seen) == 13
    assert len(set(seen)) == 13


async def test_client_card_pages_the_whole_timeline(dash: Dashboard) -> None:
    client = await dash.store.create_client(
        ClientInput("C7", name="Ольга", phones=("+79161234567",))
    )
    start = datetime.now(UTC) - timedelta(days=30)
    for i in range(12):
        await dash.store.append_event(
            NewEvent(client.id, EventKind.NOTE, f"заметка {i}", at=start + timedelta(days=i))
        )
    seen: list[str] = []
    url: str | None = f"/clients/{client.id}"
    async with await dash.signed_in("vera") as http:
        while url:
            async with http.get(url) as page:
                assert page.status == 200
                html = await page.text()
            seen.extend(EVENT_RE.findall(html))
            url = _next(html)
        assert "заметка 11" in (await (await http.get(f"/clients/{client.id}")).text())
        async with http.get("/clients/999999") as page:
            assert page.status == 404
    assert len(seen) == 12
    assert seen == sorted(seen, key=int, reverse=True)


async def test_phones_are_full_for_managers_and_masked_for_viewers(dash: Dashboard) -> None:
    client = await dash.store.create_client(
        ClientInput("C9", name="Пётр", phones=("+79161234567",))
    )
    async with await dash.signed_in("anna") as http:
        async with http.get(f"/clients/{client.id}") as page:
            assert "+7 916 123-45-67" in await page.text()
        async with http.get("/clients?q=8 916 123 45 67") as page:
            html = await page.text()
            assert "Пётр" in html
            assert "+7 916 123-45-67" in html
    async with await dash.signed_in("vera") as http:
        for url in (f"/clients/{client.id}", "/clients?q=пётр"):
            async with http.get(url) as page:
                html = await page.text()
            assert "Пётр" in html
            assert "+7********67" in html
            assert "1234567" not in html
            assert "123-45" not in html


async def test_only_admins_manage_users(dash: Dashboard) -> None:
    async with await dash.signed_in("anna") as http:
        async with http.get("/users") as page:
            assert page.status == 403
            csrf = csrf_of(await page.text())
        form = {"_csrf": csrf, "login": "intruder", "password": PASSWORD, "role": "admin"}
        async with http.post("/users", data=form) as response:
            assert response.status == 403
    async with await dash.signed_in("admin") as http:
        async with http.get("/users") as page:
            csrf = csrf_of(await page.text())
        form = {"_csrf": csrf, "login": "boris", "password": "короткий", "role": "manager"}
        async with http.post("/users", data=form) as response:
            assert response.status == 400  # too short
        form["password"] = PASSWORD
        async with http.post("/users", data=form) as response:
            assert response.status == 200
            assert 'data-user="boris"' in await response.text()
        form = {"_csrf": csrf, "action": "role", "role": "viewer"}
        async with http.post("/users/boris", data=form) as response:
            assert response.status == 200
    logins = {u.login: u.role for u in await dash.users.list()}
    assert logins["boris"] is Role.VIEWER
    assert "intruder" not in logins
    async with dash.client() as http:
        assert (await dash.login(http, "boris")).status == 303
