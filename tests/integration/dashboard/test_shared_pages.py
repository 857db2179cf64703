"""Identical page requests in flight share one page, each with its own user's login and CSRF
token; a different role or a change made meanwhile gets a page of its own.

The first request's read is held by a PostgreSQL table lock (reads wait only for an ACCESS
EXCLUSIVE lock), so the others arrive while its page is being made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput
from dashboard.context import PAGES_IN_FLIGHT
from dashboard.roles import Role
from dashboard.shared_pages import PagesInFlight
from povtor.ports import NewTask
from tests.integration.dashboard.conftest import Dashboard, csrf_of
from tests.integration.sip.peers import wait_until

pytestmark = pytest.mark.postgres


def _in_flight(dash: Dashboard) -> PagesInFlight:
    assert dash.service is not None
    return dash.service.app[PAGES_IN_FLIGHT]


async def _reads_waiting(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE :table"
                ),
                {"table": f"%{table}%"},
            )
            or 0
        )


def _waiting(engine: AsyncEngine, table: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _reads_waiting(engine, table) == count

    return check


async def _page(http: aiohttp.ClientSession, path: str) -> str:
    async with http.get(path) as response:
        assert response.status == 200
        return await response.text()


async def _token(http: aiohttp.ClientSession) -> str:
    return csrf_of(await _page(http, "/clients"))


async def _setup(dash: Dashboard, db_url: str) -> int:
    if db_url.startswith("sqlite"):
        pytest.skip("the first read is held by a PostgreSQL table lock")
    client = await dash.store.create_client(ClientInput("C1", name="Иван Петров"))
    task = await dash.store.create_task(
        NewTask(client.id, "detractor", "Позвонить критику", datetime.now(UTC) + timedelta(1))
    )
    await dash.add_user("boris", Role.MANAGER)
    return task.id


async def test_managers_asking_at_once_share_one_page_each_with_their_own_token(
    dash: Dashboard, db_url: str
) -> None:
    await _setup(dash, db_url)
    in_flight = _in_flight(dash)
    async with (
        await dash.signed_in("anna") as anna,
        await dash.signed_in("boris") as boris,
        await dash.signed_in("vera") as vera,
    ):
        tokens = [await _token(http) for http in (anna, boris, vera)]
        assert len(set(tokens)) == 3
        async with asyncio.TaskGroup() as requests, dash.engine.connect() as locker:
            await locker.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
            first = requests.create_task(_page(anna, "/tasks"))
            await wait_until(_waiting(dash.engine, "tasks", 1), 30, "the read", every_s=0.05)
            second = requests.create_task(_page(boris, "/tasks"))
            await wait_until(lambda: in_flight.waiting == 1, 30, "a second manager", every_s=0.05)
            third = requests.create_task(_page(vera, "/tasks"))  # a viewer: a page of her own
            await wait_until(_waiting(dash.engine, "tasks", 2), 30, "the viewer's", every_s=0.05)
            assert in_flight.waiting == 1
            await locker.rollback()
        pages = [first.result(), second.result(), third.result()]
    assert in_flight.shared == 1
    for html, login, token in zip(pages, ("anna", "boris", "vera"), tokens, strict=True):
        assert "Позвонить критику" in html
        assert f'<span class="who">{login} · ' in html
        assert csrf_of(html) == token
        assert all(other not in html for other in tokens if other != token)
        assert in_flight.placeholders.login not in html
        assert in_flight.placeholders.csrf not in html
    assert "Взять в работу" in pages[0]
    assert "Взять в работу" in pages[1]
    assert "Взять в работу" not in pages[2]


async def test_a_change_made_meanwhile_is_not_hidden_by_a_page_begun_before_it(
    dash: Dashboard, db_url: str
) -> None:
    task_id = await _setup(dash, db_url)
    in_flight = _in_flight(dash)
    async with await dash.signed_in("anna") as anna, await dash.signed_in("boris") as boris:
        token = await _token(anna)
        async with asyncio.TaskGroup() as requests, dash.engine.connect() as locker:
            await locker.execute(text("LOCK TABLE nps_responses IN ACCESS EXCLUSIVE MODE"))
            requests.create_task(_page(anna, "/nps?period=all"))
            await wait_until(_waiting(dash.engine, "nps_responses", 1), 30, "a read", every_s=0.05)
            async with anna.post(
                f"/tasks/{task_id}/take", data={"_csrf": token}, allow_redirects=False
            ) as response:
                assert response.status == 303
            requests.create_task(_page(boris, "/nps?period=all"))
            await wait_until(
                _waiting(dash.engine, "nps_responses", 2), 30, "its own", every_s=0.05
            )
            assert in_flight.waiting == 0
            await locker.rollback()
    assert in_flight.shared == 0


async def test_when_the_first_request_fails_the_waiting_one_makes_its_own_page(
    dash: Dashboard, db_url: str
) -> None:
    await _setup(dash, db_url)
    in_flight = _in_flight(dash)
    async with await dash.signed_in("anna") as anna, await dash.signed_in("boris") as boris:
        token = await _token(boris)
        async with asyncio.TaskGroup() as requests, dash.engine.connect() as locker:
            await locker.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
            first = requests.create_task(anna.get("/tasks"))
            await wait_until(_waiting(dash.engine, "tasks", 1), 30, "the read", every_s=0.05)
            second = requests.create_task(_page(boris, "/tasks"))
            await wait_until(lambda: in_flight.waiting == 1, 30, "a second manager", every_s=0.05)
            async with dash.engine.connect() as admin:  # the first request's read is cut
                await admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                        "AND query ILIKE '%tasks%'"
                    )
                )
            async with await first as failed:
                assert failed.status == 500
            await wait_until(_waiting(dash.engine, "tasks", 1), 30, "its own read", every_s=0.05)
            await locker.rollback()
        html = second.result()
    assert in_flight.shared == 0
    assert "Позвонить критику" in html
    assert csrf_of(html) == token


async def test_an_error_page_of_a_shared_view_carries_the_users_own_token(
    dash: Dashboard, db_url: str
) -> None:
    await _setup(dash, db_url)
    async with await dash.signed_in("anna") as anna:
        token = await _token(anna)
        async with anna.get("/clients/987654") as response:
            assert response.status == 404
            html = await response.text()
    assert csrf_of(html) == token
    assert '<span class="who">anna · ' in html
