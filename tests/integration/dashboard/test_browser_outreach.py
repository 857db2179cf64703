"""The outreach page in headless Chromium keeps itself current: a campaign planned while the
page is open shows up without a reload, and its approve button (CSRF form) still works.

Needs Debian ``chromium`` and ``chromium-driver`` plus the ``selenium`` package; skipped without.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from outreach.control import SqlOutreachControl
from outreach.planner import Planner
from outreach.queue import AttemptQueue
from outreach.rules import ContactRules
from outreach.tables import AttemptRow
from povtor.db import session_factory
from povtor.ports import PlanningRules
from tests.integration.dashboard.conftest import serving

# the same browser, sign-in and marks (skipped without Chromium; SQLite) as the other pages
from tests.integration.dashboard.test_browser_pages import (  # noqa: F401
    _driver,
    _sign_in,
    pytestmark,
)

RULES = ContactRules(retries=ContactRules().retries)
WAIT_S = 20  # the page refreshes every second here; generous for a loaded machine


def _open(url: str) -> Any:
    """A manager's browser on the outreach page, with a marker a reload would lose."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    _sign_in(driver, url, "anna")
    driver.get(url + "/outreach")
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "approvals")))
    assert not driver.find_elements(By.CSS_SELECTOR, "tr[data-campaign]")
    driver.execute_script("window.notReloaded = true;")
    return driver


def _approve_when_shown(driver: Any) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_S)
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr[data-campaign]")))
    seen = {
        "row": row.text,
        "same_page": driver.execute_script("return window.notReloaded === true;"),
        "stamp": driver.find_element(By.ID, "refreshed").text,
    }
    row.find_element(By.CSS_SELECTOR, "form[action$='/approve'] button").click()
    seen["done"] = wait.until(ec.presence_of_element_located((By.ID, "done"))).text
    return seen


async def test_outreach_page_shows_a_new_campaign_without_reload_and_approves_it(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    queue = AttemptQueue(session_factory(engine), worker_id="w1", lease=timedelta(seconds=60))
    control = SqlOutreachControl(session_factory(engine), queue, store, RULES, clock=lambda: now)
    planner = Planner(
        SqlPlanningSource(session_factory(engine)),
        queue,
        RULES,
        PlanningRules(),
        approval_threshold=3,
        clock=lambda: now,
    )
    for i in range(4):  # four clients due for an NPS survey: over the threshold of three
        code = f"C{i}"
        await store.create_client(ClientInput(code, name=f"Клиент {i}", phones=("+79161234567",)))
        await store.add_order(
            OrderInput(
                f"O{i}",
                code,
                now - timedelta(days=8),
                Decimal("1000.00"),
                delivered_at=now - timedelta(days=5),
            )
        )
    fast: dict[str, object] = {"live_refresh_s": 1.0}
    async with serving(engine, store, db_url, tmp_path, outreach=control, dashboard=fast) as d:
        driver = await asyncio.to_thread(_open, d.url)
        try:
            assert await planner.run_once() == 4  # planned while the page is open
            seen = await asyncio.to_thread(_approve_when_shown, driver)
        finally:
            await asyncio.to_thread(driver.quit)
    assert seen["same_page"] is True
    assert "обновлено" in seen["stamp"]
    assert "4" in seen["row"]
    assert "Рассылка одобрена" in seen["done"]
    async with engine.connect() as conn:
        states = set(await conn.scalars(select(AttemptRow.state)))
    assert states == {"planned"}
