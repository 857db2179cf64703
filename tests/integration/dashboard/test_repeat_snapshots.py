"""The repeat-sales page reads the report the worker stored for the chosen period, says when it
was computed, and says so when none is stored yet (over real HTTP, signed in, both databases)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from crm_sync.metrics.nps_days import NpsDays
from crm_sync.metrics.snapshots import ReportSnapshots
from povtor.domain import ChannelKind
from povtor.ports import NewNpsResponse
from tests.integration.dashboard.conftest import Dashboard, serving

CLIENT_RE = re.compile(r'<tr data-client="(\d+)">')
NOW = datetime.now(UTC)
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
async def big(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> AsyncIterator[Dashboard]:
    """A dashboard that never computes a report on request (as for a large base)."""
    async with serving(
        engine, store, db_url, tmp_path, dashboard={"report_live_max_clients": 0}
    ) as d:
        yield d


async def _page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        assert page.status == 200, url
        return await page.text()


async def _shop(store: SqlHistoryStore) -> None:
    """Three clients: two repeat buyers (one big) and a one-off buyer, all within the month."""
    for code, amounts in (("R1", ("9000", "8000")), ("R2", ("700", "600")), ("N1", ("50",))):
        await store.create_client(ClientInput(code, name=f"Клиент {code}"))
        for i, amount in enumerate(amounts):
            placed = NOW - timedelta(days=3 + 5 * i)
            await store.add_order(OrderInput(f"{code}-{i}", code, placed, Decimal(amount)))


def _figure(html: str, name: str) -> str:
    shown = re.search(rf'data-figure="{name}" data-value="[^"]*">([^<]+)<', html)
    assert shown, name
    return shown.group(1)


async def test_page_serves_the_stored_report_with_when_it_was_computed(big: Dashboard) -> None:
    await _shop(big.store)
    stored = {s.period: s for s in await ReportSnapshots(big.engine).refresh()}
    # orders after the refresh are not in the stored figures until the next one
    await big.store.add_order(OrderInput("late", "N1", NOW - timedelta(hours=1), Decimal("5")))
    async with await big.signed_in("vera") as http:
        default = await _page(http, "/repeat")
        month = await _page(http, "/repeat?period=month")
        same_days = await _page(
            http, f"/repeat?from={stored['month'].first}&to={stored['month'].last}"
        )
        link = re.search(r'href="([^"]+)" data-cell="A"', month)
        assert link
        listed = {int(i) for i in CLIENT_RE.findall(await _page(http, unescape(link.group(1))))}
    for html, name in ((default, "year"), (month, "month"), (same_days, "month")):
        report = stored[name].report
        local = stored[name].computed_at.astimezone(MOSCOW)
        assert f"Рассчитано {local:%d.%m} в {local:%H:%M}" in html
        assert 'id="not-computed"' not in html
        assert _figure(html, "repeat_purchase_rate") == "67\u00a0%"  # 2 of 3, not 2 of 3 + late
        for key, count in report["abc_xyz"].items():
            assert f'data-cell="{key}" data-clients="{count}"' in html
        assert report["orders"] == 5
    assert 'href="/repeat?period=month" aria-current="page"' in month
    assert len(listed) == stored["month"].report["abc_xyz"]["A"] == 1


async def test_a_cell_lists_the_clients_its_stored_report_counts(big: Dashboard) -> None:
    """The cell's clients come from the classes stored with the report, not from classifying
    the buyers again: an order after the refresh moves no one until the next refresh."""
    await _shop(big.store)
    await ReportSnapshots(big.engine).refresh()
    r1 = await big.store.find_client("R1")
    n1 = await big.store.find_client("N1")
    assert r1 is not None
    assert n1 is not None
    # classified now, N1 would be the only A client
    await big.store.add_order(OrderInput("big", "N1", NOW - timedelta(hours=1), Decimal("99999")))
    async with await big.signed_in("vera") as http:
        month = await _page(http, "/repeat?period=month")
        listed = {}
        for key in "AC":
            link = re.search(rf'href="([^"]+)" data-cell="{key}"', month)
            assert link
            page = await _page(http, unescape(link.group(1)))
            listed[key] = {int(i) for i in CLIENT_RE.findall(page)}
    assert listed == {"A": {r1.id}, "C": {n1.id}}


async def test_page_says_when_no_report_is_stored_yet(big: Dashboard) -> None:
    await _shop(big.store)
    async with await big.signed_in("vera") as http:
        html = await _page(http, "/repeat?period=quarter")
        custom = await _page(http, "/repeat?from=2025-01-01&to=2025-03-31")
    assert 'id="not-computed"' in html
    assert "ещё не рассчитан" in html
    assert "povtor report --store" in html
    assert "data-figure=" not in html
    assert 'id="not-computed"' in custom
    assert "до 0 клиентов" in custom
    assert "data-figure=" not in custom


async def test_a_small_base_without_a_stored_report_is_computed_on_request(
    dash: Dashboard,
) -> None:
    await _shop(dash.store)
    async with await dash.signed_in("vera") as http:
        small = await _page(http, "/repeat?period=quarter")
    assert 'id="not-computed"' in small
    assert "Рассчитано сейчас, по запросу" in small
    assert _figure(small, "repeat_purchase_rate") == "67\u00a0%"


async def test_pages_say_their_figures_follow_the_planning_pass(big: Dashboard) -> None:
    await _shop(big.store)
    r1 = await big.store.find_client("R1")
    assert r1 is not None
    answer = NewNpsResponse(r1.id, 2, ChannelKind.TELEGRAM, answered_at=NOW - timedelta(days=2))
    await big.store.record_nps(answer)
    async with await big.signed_in("vera") as http:
        before = await _page(http, "/")  # nothing stored yet: every answer counted now
    await ReportSnapshots(big.engine).refresh()  # as the worker does after a planning pass
    async with big.engine.connect() as conn:
        through = await NpsDays(big.engine).through(conn)
    async with await big.signed_in("vera") as http:
        repeat = await _page(http, "/repeat")
        weeks = await _page(http, "/?trend=week")
        why = await _page(http, "/why")
    assert 'id="after-pass"' in repeat
    assert "после каждого прохода планирования" in repeat
    assert 'id="stored-days"' not in before
    if through is None:  # SQLite: nothing stored, nothing to say
        assert big.engine.dialect.name == "sqlite"
        assert 'id="stored-days"' not in weeks + why
        return
    local = through.astimezone(MOSCOW)
    for html in (weeks, why):
        assert f"Оценки до {local:%d.%m} в {local:%H:%M}" in html
        assert "после прохода планирования" in html
