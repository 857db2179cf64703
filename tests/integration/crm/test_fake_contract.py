"""The fake CRMs are as strict as the documented APIs, and the connectors read their answers
the way they must read the real ones (no database involved)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from crm_sync.connectors.amocrm import AmoCrm
from crm_sync.connectors.amocrm_auth import AmoAuth, MemoryTokenStore, Tokens
from crm_sync.connectors.bitrix24 import Bitrix24
from crm_sync.connectors.errors import CrmAuthFailed, CrmRateLimited, CrmRefused
from crm_sync.connectors.http import CrmHttp, RateLimiter
from povtor.domain import Client
from povtor.ports import CrmNote
from tests.fakes import bitrix24_api
from tests.fakes.amocrm_api import FakeAmoCrm
from tests.fakes.bitrix24_api import FakeBitrix24

pytestmark = pytest.mark.crm


async def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        text = await r.text()
        return r.status, (await r.json(content_type=None)) if text else None


async def get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        text = await r.text()
        return r.status, (await r.json(content_type=None)) if text else None


async def test_bitrix24_fake_checks_the_webhook_methods_and_fields(bitrix: FakeBitrix24) -> None:
    wrong = f"{bitrix.base_url}/rest/{bitrix24_api.USER_ID}/not-the-token/crm.contact.list.json"
    assert await post(wrong, {}) == (
        401,
        {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"},
    )
    status, body = await post(bitrix.webhook_url + "crm.nothing.json", {})
    assert (status, body["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    status, body = await post(bitrix.webhook_url + "crm.contact.add.json", {"fields": {}})
    assert status == 400
    assert set(body) == {"error", "error_description"}
    status, body = await post(  # the upper-case key is no longer accepted (crm 23.100.0)
        bitrix.webhook_url + "crm.timeline.comment.add.json",
        {"FIELDS": {"ENTITY_ID": 1, "ENTITY_TYPE": "contact", "COMMENT": "x"}},
    )
    assert status == 400
    status, body = await post(
        bitrix.webhook_url + "crm.contact.list.json", {"filter": {"PHONE": "+79161234567"}}
    )
    assert (status, body["result"], body["total"]) == (200, [], 0)
    assert {"start", "finish", "duration"} <= set(body["time"])


async def test_bitrix24_fake_answers_query_limit_exceeded_when_its_bucket_overflows() -> None:
    fake = FakeBitrix24(bucket_size=2, leak_per_s=0.001)
    await fake.start()
    try:
        answers = [await post(fake.webhook_url + "crm.contact.list.json", {}) for _ in range(3)]
    finally:
        await fake.stop()
    assert [s for s, _ in answers] == [200, 200, 503]
    assert answers[2][1] == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }


async def test_bitrix24_connector_reads_refusals_limits_and_credentials(
    bitrix: FakeBitrix24,
) -> None:
    connector = Bitrix24(bitrix.webhook_url, CrmHttp("Bitrix24", RateLimiter(1000, 50)))
    wrong = Bitrix24(
        bitrix.webhook_url.replace(bitrix24_api.TOKEN, "revoked"),
        CrmHttp("Bitrix24", RateLimiter(1000, 50)),
    )
    impatient = Bitrix24(
        bitrix.webhook_url, CrmHttp("Bitrix24", RateLimiter(1000, 50)), rate_limit_wait_s=0.01
    )
    try:
        with pytest.raises(CrmRefused, match="NOT_FOUND"):
            await connector.add_note("999", CrmNote("[povtor:1]", "x [povtor:1]"))
        with pytest.raises(CrmAuthFailed, match="INVALID_CREDENTIALS"):
            await wrong.contact_exists("1")
        contact = await connector.create_contact(
            Client(id=1, external_id="C1", name="Иван", phones=("+79161234567",))
        )
        found = await connector.find_contact(
            Client(id=2, external_id="C2", name="Иван", phones=("+79161234567",))
        )
        assert found == contact
        bitrix.bucket_size = 0  # every request over the limit from now on
        with pytest.raises(CrmRateLimited):
            await impatient.contact_exists(contact)
    finally:
        for c in (connector, wrong, impatient):
            await c.aclose()


async def test_amocrm_fake_checks_tokens_and_answers_problem_json(amo: FakeAmoCrm) -> None:
    api = f"{amo.base_url}/api/v4"
    status, body = await get(f"{api}/contacts", {})
    assert (status, body["title"], body["status"]) == (401, "Unauthorized", 401)
    token = amo.long_lived_token()
    auth = {"Authorization": f"Bearer {token}"}
    assert await get(f"{api}/contacts?query=nobody", auth) == (204, None)
    assert await get(f"{api}/contacts/12345", auth) == (204, None)
    status, body = await post(f"{api}/contacts/notes", [{"entity_id": 1}], auth)
    assert status == 400
    [problem] = body["validation-errors"]
    assert problem["errors"][0]["path"] == "entity_id"


async def test_amocrm_fake_rotates_and_revokes_refresh_tokens(amo: FakeAmoCrm) -> None:
    from tests.fakes import amocrm_api as a

    _, refresh = amo.grant()
    body = {
        "client_id": a.CLIENT_ID,
        "client_secret": a.CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "redirect_uri": a.REDIRECT_URI,
    }
    status, fresh = await post(f"{amo.base_url}/oauth2/access_token", body)
    assert status == 200
    assert fresh["token_type"] == "Bearer"
    assert fresh["refresh_token"] != refresh
    status, again = await post(f"{amo.base_url}/oauth2/access_token", body)
    assert (status, again["hint"]) == (400, "Token has been revoked")
    status, _ = await post(
        f"{amo.base_url}/oauth2/access_token", {**body, "client_secret": "wrong"}
    )
    assert status == 401


async def test_amocrm_connector_reads_429_and_a_dead_long_lived_token() -> None:
    fake = FakeAmoCrm(rate_limit=1)
    await fake.start()
    token = fake.long_lived_token()
    http = CrmHttp("amoCRM", RateLimiter(1000, 50))
    connector = AmoCrm(
        fake.base_url,
        http,
        AmoAuth(http, fake.base_url, MemoryTokenStore(Tokens(token)), None),
        rate_limit_wait_s=0.01,
    )
    try:
        assert not await connector.contact_exists("1")
        with pytest.raises(CrmRateLimited, match="429"):  # 5 tries within the 1 s window
            await connector.contact_exists("1")
        fake.rate_limit = 1000
        fake.expire_access_tokens()
        with pytest.raises(CrmAuthFailed, match="401"):  # nothing to refresh it with
            await connector.contact_exists("1")
    finally:
        await connector.aclose()
        await fake.stop()
