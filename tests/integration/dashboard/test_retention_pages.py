"""Where retention is managed: the client list (filters, figures, export), the reasons page,
the repeat-sales page and the overview's tasks and contacts, over real HTTP on both databases."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from openpyxl import load_workbook
from sqlalchemy import text

from crm_sync.history.store import ClientInput, OrderInput
from povtor.domain import ChannelKind, ConsentChannel, EventKind, ReasonCategory
from povtor.ports import NewEvent, NewNpsResponse, NewTask
from tests.integration.dashboard.conftest import Dashboard

CLIENT_RE = re.compile(r'<tr data-client="(\d+)">')
NOW = datetime.now(UTC)


async def _page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        assert page.status == 200, url
        return await page.text()


async def _business(dash: Dashboard) -> dict[str, int]:
    """Five clients: a repeat buyer and promoter, a new buyer and detractor who asked to be
    left alone, a lost buyer, a client without orders, and one named like a formula."""
    s = dash.store
    ids: dict[str, int] = {}
    specs = {
        "repeat": ClientInput(
            "R1",
            name="Ольга Постоянная",
            phones=("+79161234567",),
            consents=((ConsentChannel.TELEGRAM, True, "test"),),
        ),
        "new": ClientInput("N1", name="Нина Новая", phones=("+79035550011",)),
        "lost": ClientInput("L1", name="Лев Ушедший", phones=("+79267770022",)),
        "none": ClientInput("Z1", name="Зоя Без Заказов"),
        "formula": ClientInput("F1", name='=HYPERLINK("http://evil")', phones=("+79990001122",)),
    }
    for key, spec in specs.items():
        ids[key] = (await s.create_client(spec)).id
    orders = [
        ("R1", 10, "1000"),
        ("R1", 100, "2000"),
        ("N1", 5, "500"),
        ("L1", 500, "700"),
        ("F1", 40, "300"),
    ]
    for i, (code, days, amount) in enumerate(orders):
        await s.add_order(OrderInput(f"O{i}", code, NOW - timedelta(days=days), Decimal(amount)))
    answers = [("repeat", 10, None, 3), ("new", 2, ReasonCategory.DELIVERY, 1)]
    for key, score, category, days in answers:
        await s.record_nps(
            NewNpsResponse(
                ids[key],
                score,
                ChannelKind.CALL,
                reason_text="перезвоните на +7 903 555-00-11" if score < 7 else None,
                reason_category=category,
                answered_at=NOW - timedelta(days=days),
            )
        )
    await s.set_opt_out(ids["new"], True, source="test")
    await s.link_telegram(ids["repeat"], 5001)
    return ids


async def _listed(http: aiohttp.ClientSession, query: str) -> set[int]:
    return {int(i) for i in CLIENT_RE.findall(await _page(http, "/clients?" + query))}


async def test_client_list_filters_return_what_the_data_says(dash: Dashboard) -> None:
    ids = await _business(dash)
    async with await dash.signed_in("anna") as http:
        assert await _listed(http, "segment=repeat") == {ids["repeat"]}
        assert await _listed(http, "segment=new") == {ids["new"], ids["formula"]}
        assert await _listed(http, "segment=lost") == {ids["lost"]}
        assert await _listed(http, "segment=none") == {ids["none"]}
        assert await _listed(http, "nps=detractor") == {ids["new"]}
        assert await _listed(http, "nps=promoter") == {ids["repeat"]}
        assert await _listed(http, "age=30") == {ids["repeat"], ids["new"]}
        assert await _listed(http, "age=90") == {ids["formula"]}
        assert await _listed(http, "age=old") == {ids["lost"]}
        assert await _listed(http, "channel=telegram") == {ids["repeat"]}
        assert await _listed(http, "consent=telegram") == {ids["repeat"]}
        assert await _listed(http, "optout=yes") == {ids["new"]}
        assert ids["new"] not in await _listed(http, "optout=no")
        assert await _listed(http, "q=%D0%BB%D0%B5%D0%B2") == {ids["lost"]}  # "лев", any case
        assert await _listed(http, "segment=new&optout=no") == {ids["formula"]}
        assert await _listed(http, "nps=passive") == set()
        # an answer from a client without orders: filtered by it, still without orders
        await dash.store.record_nps(NewNpsResponse(ids["none"], 8, ChannelKind.TELEGRAM))
        assert await _listed(http, "nps=passive") == {ids["none"]}
        assert await _listed(http, "nps=passive&segment=none") == {ids["none"]}
        # a later answer of the detractor moves them to the promoters
        await dash.store.record_nps(NewNpsResponse(ids["new"], 10, ChannelKind.CALL))
        assert await _listed(http, "nps=detractor") == set()
        assert await _listed(http, "nps=promoter") == {ids["repeat"], ids["new"]}
        html = await _page(http, "/clients?segment=repeat")
    row = html[html.index(f'<tr data-client="{ids["repeat"]}">') :]
    row = row[: row.index("</tr>")]
    assert "постоянный" in row
    assert '<td class="num">2</td>' in row  # orders
    assert "3\u00a0000,00\u00a0₽" in row  # revenue
    assert "score-promoter" in row  # last answer


async def test_client_list_statements_reused_per_shape_take_each_requests_values(
    dash: Dashboard,
) -> None:
    """A list's statement is built once per shape of filters: the values of each request
    (consent channel, page start, order ages, today) still decide what it lists."""
    ids = await _business(dash)
    await dash.store.set_consent(ids["lost"], ConsentChannel.CALL, True, source="test")
    async with await dash.signed_in("anna") as http:
        for _ in range(2):
            assert await _listed(http, "consent=telegram") == {ids["repeat"]}
            assert await _listed(http, "consent=call") == {ids["lost"]}
            assert await _listed(http, f"segment=none&after={ids['none'] - 1}") == {ids["none"]}
            assert await _listed(http, f"segment=none&after={ids['none']}") == set()
            assert await _listed(http, "age=30&segment=new") == {ids["new"]}
            assert await _listed(http, "age=90&segment=new") == {ids["formula"]}
            assert await _listed(http, "nps=promoter&segment=repeat") == {ids["repeat"]}
            assert await _listed(http, "nps=promoter&segment=lost") == set()


async def test_client_list_pages_every_filtered_client_once(dash: Dashboard) -> None:
    for i in range(12):
        await dash.store.create_client(ClientInput(f"P{i}", name=f"Пётр {i}"))
    seen: list[int] = []
    url: str | None = "/clients?segment=none"
    async with await dash.signed_in("anna") as http:
        while url:
            html = await _page(http, url)
            found = [int(i) for i in CLIENT_RE.findall(html)]
            assert len(found) <= 5
            seen.extend(found)
            match = re.search(r'<a href="([^"]+)" rel="next">', html)
            url = unescape(match.group(1)) if match else None
    assert len(seen) == 12 == len(set(seen))


async def test_export_is_the_filtered_list_with_formulas_neutralised(dash: Dashboard) -> None:
    ids = await _business(dash)
    async with dash.engine.connect() as conn:
        expected = await conn.execute(
            text(
                "SELECT client_id FROM client_stats WHERE orders_count = 1 AND last_order_at >= :d"
            ),
            {"d": NOW - timedelta(days=365)},
        )
        new_ids = {r[0] for r in expected}
    assert new_ids == {ids["new"], ids["formula"]}
    async with await dash.signed_in("anna") as http:
        async with http.get("/clients/export.csv?segment=new") as response:
            assert response.status == 200
            assert "attachment" in response.headers["Content-Disposition"]
            body = (await response.read()).decode("utf-8-sig")
        async with http.get("/clients/export.xlsx?segment=new") as response:
            assert response.status == 200
            book = load_workbook(io.BytesIO(await response.read()))
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0][:3] == ["id", "Код клиента", "Имя"]
    assert {int(r[0]) for r in rows[1:]} == {ids["new"], ids["formula"]}
    assert rows[0][8:10] == ["Последняя оценка", "Дата оценки"]
    new_row = next(r for r in rows[1:] if int(r[0]) == ids["new"])
    answered = (NOW - timedelta(days=1)).astimezone(ZoneInfo("Europe/Moscow"))
    assert new_row[8:10] == ["2", answered.strftime("%Y-%m-%d")]  # the detractor's answer
    formula_row = next(r for r in rows[1:] if int(r[0]) == ids["formula"])
    assert formula_row[8:10] == ["", ""]
    assert formula_row[2] == '\'=HYPERLINK("http://evil")'
    assert formula_row[3] == "'+7 999 000-11-22"  # a manager sees the number, as text
    sheet = book.active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert {r[0] for r in cells[1:]} == {ids["new"], ids["formula"]}
    names = [r[2] for r in cells[1:]]
    assert '\'=HYPERLINK("http://evil")' in names
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    assert any(str(r[3]).startswith("'+7") for r in cells[1:])


async def test_viewer_finds_phones_only_by_last_four_digits_or_the_whole_number(
    dash: Dashboard,
) -> None:
    ids = await _business(dash)
    async with await dash.signed_in("vera") as http:
        assert await _listed(http, "q=4567") == {ids["repeat"]}  # last 4
        assert await _listed(http, "q=9161234567") == {ids["repeat"]}  # whole number
        assert await _listed(http, "q=%2B79161234567") == {ids["repeat"]}
        assert await _listed(http, "q=89161234567") == {ids["repeat"]}
        for probe in ("1234", "91612", "916123456", "234567", "456"):
            assert await _listed(http, f"q={probe}") == set(), probe
        html = await _page(http, "/clients?q=4567")
        assert "+79161234567" not in html
        assert "916 123" not in html
        async with http.get("/clients/export.csv?q=4567") as response:
            body = (await response.read()).decode("utf-8-sig")
        assert "123" not in body.split("\n")[1]  # masked in the export too
    async with await dash.signed_in("anna") as http:
        assert await _listed(http, "q=1234") == {ids["repeat"]}  # managers search freely


async def test_viewer_reads_phone_numbers_masked_in_free_text(dash: Dashboard) -> None:
    ids = await _business(dash)
    await dash.store.append_event(
        NewEvent(ids["new"], EventKind.MESSAGE_IN, "мой номер 8(903)5550011, жду")
    )
    await dash.store.create_task(
        NewTask(ids["new"], "detractor", "Позвонить +79035550011", NOW + timedelta(days=1))
    )
    await dash.store.create_client(ClientInput("X1", name="Магазин 89035550011"))
    for login, visible in (("vera", False), ("anna", True)):
        async with await dash.signed_in(login) as http:
            pages = "".join(
                [
                    await _page(http, f"/clients/{ids['new']}"),
                    await _page(http, "/nps?period=30"),
                    await _page(http, "/"),
                    await _page(http, "/tasks?view=open"),
                    await _page(http, "/clients?q=%D0%BC%D0%B0%D0%B3%D0%B0%D0%B7%D0%B8%D0%BD"),
                ]
            )
            async with http.get("/clients/export.csv?segment=none") as response:
                pages += (await response.read()).decode("utf-8-sig")
        for written in ("903 555-00-11", "8(903)5550011", "+79035550011", "89035550011"):
            assert (written in pages) is visible, (login, written)
        if not visible:
            assert "+• ••• •••-••-11" in pages
            assert "•(•••)•••••11" in pages


async def test_why_page_is_a_pareto_of_reasons_with_change_and_drill_down(
    dash: Dashboard,
) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    today = NOW.date()
    first = today - timedelta(days=29)
    reasons = [ReasonCategory.DELIVERY] * 3 + [ReasonCategory.PRICE] * 2 + [None]
    for i, category in enumerate(reasons):
        await _answer(dash, client.id, 3, category, NOW - timedelta(days=i + 1))
    await _answer(dash, client.id, 8, ReasonCategory.PRICE, NOW - timedelta(days=2))  # passive
    await _answer(dash, client.id, 2, ReasonCategory.PRICE, NOW - timedelta(days=40))  # before
    query = f"from={first.isoformat()}&to={today.isoformat()}"
    async with await dash.signed_in("vera") as http:
        html = await _page(http, f"/why?{query}")
        bars = re.findall(r'data-key="(\w+)" data-count="(\d+)" data-cumulative="([\d.]+)"', html)
        assert bars == [
            ("delivery", "3", "50.0"),
            ("price", "2", "83.3"),
            ("none", "1", "100.0"),
        ]
        assert '<tr data-reason="price">' in html
        assert "+1</td>" in html  # price: 2 now against 1 in the previous 30 days
        link = unescape(re.findall(r'<a href="(/nps\?[^"]+)" class="bar-link">', html)[0])
        drill = await _page(http, link)
        assert len(re.findall(r'data-answer="\d+"', drill)) == 3
        assert "доставка" in drill
        both = await _page(http, f"/why?{query}&group=passive")
        assert re.findall(r'data-key="(\w+)" data-count="(\d+)"', both) == [("price", "1")]


async def _answer(
    dash: Dashboard, client_id: int, score: int, category: Any, at: datetime
) -> None:
    await dash.store.record_nps(
        NewNpsResponse(client_id, score, ChannelKind.TELEGRAM, "текст", category, answered_at=at)
    )


async def test_repeat_page_shows_the_report_and_cells_list_their_clients(
    dash: Dashboard,
) -> None:
    from crm_sync.demo.generate import DemoSpec
    from crm_sync.demo.load import load_demo
    from crm_sync.metrics.reports import SqlReports

    until = date(2026, 1, 31)
    await load_demo(dash.engine, DemoSpec(clients=120, seed=3, until=until))
    first, last = date(2025, 2, 1), until
    async with await dash.signed_in("vera") as http:
        html = await _page(http, f"/repeat?from={first}&to={last}")
        cells = dict(re.findall(r'data-cell="(\w+)" data-clients="(\d+)"', html))
        start = datetime(2025, 1, 31, 21, tzinfo=UTC)  # Moscow midnight
        report = (
            await SqlReports(dash.engine).report(start, start.replace(2026, 1, 31))
        ).as_json()
        for key, count in report["abc_xyz"].items():
            assert int(cells[key]) == count, key
        for name in ("retention_rate", "churn_rate", "repeat_purchase_rate"):
            value = report[name]
            shown = re.search(rf'data-figure="{name}" data-value="[^"]*">([^<]+)<', html)
            assert shown
            assert shown.group(1) == f"{100 * value:.0f}\u00a0%"
        for t in report["tenure"]:
            assert f'data-cohort="{t["cohort"]}"' in html
        key, count = max(report["abc_xyz"].items(), key=lambda kv: kv[1])
        listed: set[int] = set()
        url: str | None = unescape(re.search(rf'href="([^"]+)" data-cell="{key}"', html).group(1))  # type: ignore[union-attr]
        while url:
            page = await _page(http, url)
            listed |= {int(i) for i in CLIENT_RE.findall(page)}
            match = re.search(r'<a href="([^"]+)" rel="next">', page)
            url = unescape(match.group(1)) if match else None
    assert len(listed) == count


async def test_overview_counts_overdue_tasks_and_todays_contacts(dash: Dashboard) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    await dash.store.create_task(NewTask(client.id, "callback", "Старая", NOW - timedelta(days=2)))
    await dash.store.create_task(NewTask(client.id, "callback", "Новая", NOW + timedelta(days=2)))
    for i, outcome in enumerate(("answered", "answered", "no_answer")):
        await dash.store.append_event(
            NewEvent(client.id, EventKind.CALL, "Звонок", data={"outcome": outcome}, ref=f"c{i}")
        )
    await dash.store.append_event(NewEvent(client.id, EventKind.MESSAGE_OUT, "Telegram: привет"))
    await dash.store.append_event(
        NewEvent(client.id, EventKind.CALL, "вчера", at=NOW - timedelta(days=2))
    )
    async with await dash.signed_in("vera") as http:
        html = await _page(http, "/")
    assert 'id="open-tasks">2</a>' in html
    assert "просрочено: 1" in html
    assert '<b data-figure="calls">3</b> (разговор: 2, не ответили: 1' in html
    assert '<b data-figure="messages">1</b>' in html
    async with await dash.signed_in("vera") as http:
        weekly = await _page(http, "/?trend=week")
    assert weekly.count('<text class="count"') == 12
