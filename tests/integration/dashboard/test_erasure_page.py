"""Erasing a client from its card: admins only, with the CSRF token and a confirmation box;
the client is gone everywhere and the request names the dashboard user who made it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.erasure import build_erasure
from crm_sync.history.erasure_ledger import SqlErasureLedger
from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.db import session_factory
from povtor.settings import Settings
from tests.integration.dashboard.conftest import csrf_of, serving


async def test_an_admin_erases_a_client_from_its_card_and_others_cannot(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    erasure = build_erasure(settings, session_factory(engine))
    client = await store.create_client(ClientInput("C1", name="Иван", phones=("+79161234567",)))
    kept = await store.create_client(ClientInput("C2", name="Пётр"))
    url = f"/clients/{client.id}"
    async with serving(engine, store, db_url, tmp_path, erasure=erasure) as dash:
        async with await dash.signed_in("anna") as manager:
            async with manager.get(url) as page:
                html = await page.text()
            assert f"{url}/erase" not in html  # no form for a manager
            async with manager.post(
                f"{url}/erase", data={"_csrf": csrf_of(html), "confirm": "1"}
            ) as refused:
                assert refused.status == 403
        async with await dash.signed_in("admin") as admin:
            async with admin.get(url) as page:
                html = await page.text()
            assert f'action="{url}/erase"' in html
            token = csrf_of(html)
            async with admin.post(f"{url}/erase", data={"confirm": "1"}) as no_token:
                assert no_token.status == 403
            async with admin.post(f"{url}/erase", data={"_csrf": token}) as unconfirmed:
                assert unconfirmed.status == 400
            assert await store.find_client("C1") is not None
            async with admin.post(f"{url}/erase", data={"_csrf": token, "confirm": "1"}) as done:
                assert done.status == 200
                result = await done.text()
            async with admin.get(url) as gone:
                assert gone.status == 404
    assert 'data-state="done"' in result
    assert "Иван" not in result
    assert await store.find_client("C1") is None
    assert await store.find_client("C2") is not None
    (request,) = await SqlErasureLedger(session_factory(engine)).requests()
    assert request.requested_by == "dashboard:admin"
    assert request.client_id == client.id != kept.id
    assert request.state == "done"
