"""Hostile or odd input at the edges of the dashboard: redirects stay on the site, ids that are
not ASCII numbers get a clean 404, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_sync.history.store import ClientInput
from povtor.ports import NewTask
from tests.integration.dashboard.conftest import PASSWORD, Dashboard, csrf_of

# What a browser turns into another host once it drops tabs and line breaks.
ESCAPES = ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example"]


@pytest.mark.parametrize("target", ESCAPES)
async def test_login_next_with_tabs_or_line_breaks_stays_on_the_site(
    dash: Dashboard, target: str
) -> None:
    async with dash.client() as http:
        async with http.get("/login", params={"next": target}) as page:
            body = await page.text()
            token = csrf_of(body)
        assert "evil.example" not in body
        form = {"_csrf": token, "login": "anna", "password": PASSWORD, "next": target}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"


async def test_task_action_next_with_a_tab_stays_on_the_site(dash: Dashboard) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    task = await dash.store.create_task(
        NewTask(client.id, "detractor", "Позвонить", datetime.now(UTC) + timedelta(days=1))
    )
    async with await dash.signed_in("anna") as http:
        async with http.get("/tasks") as page:
            csrf = csrf_of(await page.text())
        form = {"_csrf": csrf, "next": "/\t/evil.example"}
        async with http.post(
            f"/tasks/{task.id}/take", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/tasks"


@pytest.mark.parametrize("raw_id", ["%C2%B2", "%D9%A3", "%EF%BC%91"])  # ², Arabic 3, fullwidth 1
async def test_ids_in_other_digits_are_not_found_not_a_server_error(
    dash: Dashboard, raw_id: str
) -> None:
    async with await dash.signed_in("anna") as http:
        async with http.get(f"/clients/{raw_id}", allow_redirects=False) as response:
            assert response.status == 404
        async with http.get("/tasks") as page:
            csrf = csrf_of(await page.text())
        async with http.post(
            f"/tasks/{raw_id}/take", data={"_csrf": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 404
