"""Consents on the client card: shown per channel and kind, changed by managers only, each
change in the timeline with who made it."""

from __future__ import annotations

from crm_sync.history.store import ClientInput
from povtor.domain import ConsentChannel, ContactKind, EventKind
from tests.integration.dashboard.conftest import Dashboard, csrf_of


async def test_a_manager_records_consent_and_the_change_is_in_the_timeline(
    dash: Dashboard,
) -> None:
    client = await dash.store.create_client(
        ClientInput("C1", name="Иван", consents=((ConsentChannel.CALL, True, "import"),))
    )
    url = f"/clients/{client.id}"
    form = {"channel": "call", "kind": "advertising", "granted": "1"}
    async with await dash.signed_in("vera") as viewer:
        async with viewer.get(url) as page:
            html = await page.text()
        assert 'data-consent="advertising/call"' in html
        assert f"{url}/consent" not in html  # no buttons for a viewer
        async with viewer.post(
            f"{url}/consent", data={**form, "_csrf": csrf_of(html)}, allow_redirects=False
        ) as refused:
            assert refused.status == 403
    async with await dash.signed_in("anna") as manager:
        async with manager.get(url) as page:
            token = csrf_of(await page.text())
        async with manager.post(
            f"{url}/consent", data={**form, "_csrf": token}, allow_redirects=False
        ) as done:
            assert done.status == 303
        async with manager.get(url) as page:
            html = await page.text()
    consent = (await dash.store.get_client(client.id)).consent_for(
        ConsentChannel.CALL, ContactKind.ADVERTISING
    )
    assert consent is not None
    assert (consent.granted, consent.source) == (True, "dashboard")
    [event] = [e for e in await dash.store.timeline(client.id) if e.kind is EventKind.CONSENT]
    assert event.data["by"] == "anna"
    assert event.summary == "Согласие на рекламу (звонки): да"
    assert event.summary in html


async def test_the_outreach_page_says_when_outreach_is_not_connected(dash: Dashboard) -> None:
    async with await dash.signed_in("anna") as manager, manager.get("/outreach") as page:
        assert page.status == 404
