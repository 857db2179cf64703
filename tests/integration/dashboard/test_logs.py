"""Nothing personal reaches the logs: searches by phone, logins, passwords."""

from __future__ import annotations

import asyncio
import logging

import pytest

from crm_sync.history.store import ClientInput
from tests.integration.dashboard.conftest import PASSWORD, Dashboard


class _Wait(logging.Handler):
    """Lets the test wait for the access log line of a request (written after the response)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "aiohttp.access":
            self.lines += 1
            self.changed.set()

    async def until(self, lines: int) -> None:
        async with asyncio.timeout(5):
            while self.lines < lines:
                self.changed.clear()
                await self.changed.wait()


async def test_phone_search_and_login_leave_no_personal_data_in_logs(
    dash: Dashboard, caplog: pytest.LogCaptureFixture
) -> None:
    await dash.store.create_client(ClientInput("C1", name="Иван Петров", phones=("+79161234567",)))
    waiter = _Wait()
    logging.getLogger("aiohttp.access").addHandler(waiter)
    caplog.set_level(logging.INFO)  # the production level (driver debug logs echo SQL params)
    caplog.set_level(logging.DEBUG, logger="dashboard")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    try:
        async with await dash.signed_in("anna") as http:
            for url in ("/clients?q=%2B79161234567", "/clients?q=89161234567", "/clients?q=Иван"):
                async with http.get(url) as page:
                    assert "Иван Петров" in await page.text()
            async with http.get("/nps?q=+79161234567&before=x") as page:
                assert page.status == 200
            await dash.login(http, "anna", "секрет-не-тот")
            await waiter.until(7)  # 2 for the sign-in, 4 pages, 2 for the failed login
    finally:
        logging.getLogger("aiohttp.access").removeHandler(waiter)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /clients " in text  # the access log is there, without its query
    for secret in ("9161234567", "1234567", "Иван", "Петров", PASSWORD, "секрет-не-тот"):
        assert secret not in text
    assert "failed sign-in" in text
