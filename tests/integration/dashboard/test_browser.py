"""Smoke test in headless Chromium: sign in, take a task, no CSP violations, sign out.

Needs Debian ``chromium`` and ``chromium-driver`` plus the ``selenium`` package; skipped without.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_sync.history.store import ClientInput
from povtor.domain import TaskStatus
from povtor.ports import NewTask
from tests.integration.dashboard.conftest import PASSWORD, Dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver missing"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _driver() -> Any:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _session(url: str, task_id: int) -> dict[str, Any]:
    """Drives the browser (blocking: runs in a thread while the server serves on the loop)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        wait = WebDriverWait(driver, 10)
        driver.get(url + "/tasks")
        wait.until(ec.presence_of_element_located((By.NAME, "login")))
        driver.find_element(By.NAME, "login").send_keys("anna")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        wait.until(ec.title_contains("Задачи"))
        row = driver.find_element(By.CSS_SELECTOR, f"tr[data-task='{task_id}']")
        row.find_element(By.CSS_SELECTOR, "form[action$='/take'] button").click()
        wait.until(ec.staleness_of(row))  # the POST answered and the task list loaded again
        driver.get(url + "/tasks?view=mine")
        mine = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.tasks"))).text
        cookie = driver.get_cookie("povtor_session") or {}
        css_ok = driver.execute_script(
            "return getComputedStyle(document.querySelector('header.top')).display"
        )
        console = [e["message"] for e in driver.get_log("browser")]
        driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
        wait.until(ec.presence_of_element_located((By.NAME, "login")))
        return {"mine": mine, "cookie": cookie, "css": css_ok, "console": console}
    finally:
        driver.quit()


async def test_manager_signs_in_and_takes_a_task_in_a_real_browser(dash: Dashboard) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван Петров"))
    task = await dash.store.create_task(
        NewTask(client.id, "detractor", "Позвонить критику", datetime.now(UTC) + timedelta(1))
    )
    seen = await asyncio.to_thread(_session, dash.url, task.id)
    assert "Позвонить критику" in seen["mine"]
    assert (await dash.store.get_task(task.id)).status is TaskStatus.IN_PROGRESS
    assert seen["cookie"].get("httpOnly") is True
    assert seen["cookie"].get("sameSite") == "Lax"
    assert seen["css"] == "flex"  # the stylesheet loaded under the CSP
    assert not [m for m in seen["console"] if "Content Security Policy" in m]
