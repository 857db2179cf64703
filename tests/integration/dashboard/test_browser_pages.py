"""The pages in headless Chromium: the charts' numbers against ``povtor report --json`` run as
a command, the recording and its dialogue in sync, and a 400 px phone screen.

Needs Debian ``chromium`` and ``chromium-driver`` plus the ``selenium`` package; skipped without.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo
from crm_sync.history.store import ClientInput
from povtor.domain import ChannelKind, ReasonCategory
from povtor.ports import DialogueLine, NewNpsResponse, NewTask
from tests.fakes.dashboard_calls import write_wav
from tests.integration.dashboard.conftest import PASSWORD, Dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver missing"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
MOSCOW = ZoneInfo("Europe/Moscow")
PHONE_WIDTH = 400


def _driver(width: int | None = None) -> Any:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    if width is not None:  # a phone: the layout viewport is exactly this wide
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": True},
        )
    return driver


def _sign_in(driver: Any, url: str, login: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/login")
    driver.find_element(By.NAME, "login").send_keys(login)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(driver, 10).until(ec.title_contains("Обзор"))


def _report_json(db_url: str, first: date, last: date) -> dict[str, Any]:
    """``povtor report --json`` as an operator runs it, on the same database."""
    import subprocess

    env = {**os.environ, "POVTOR_DATABASE_URL": db_url}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("povtor")),  # the installed command
            "report",
            "--json",
            "--from",
            str(first),
            "--to",
            str(last),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _read_charts(url: str, first: date, last: date) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    driver = _driver()
    try:
        _sign_in(driver, url, "vera")
        driver.get(f"{url}/repeat?from={first}&to={last}")
        figures = {
            e.get_attribute("data-figure"): (e.get_attribute("data-value"), e.text)
            for e in driver.find_elements(By.CSS_SELECTOR, "[data-figure]")
        }
        cells = {
            e.get_attribute("data-cell"): int(e.get_attribute("data-clients"))
            for e in driver.find_elements(By.CSS_SELECTOR, "a[data-cell]")
        }
        bars = {
            e.get_attribute("data-cohort"): float(e.get_attribute("data-value"))
            for e in driver.find_elements(By.CSS_SELECTOR, "svg.coefficient rect[data-cohort]")
        }
        driver.get(url + "/")
        points = [
            (p.get_attribute("data-label"), p.get_attribute("data-nps"), p.get_attribute("data-n"))
            for p in driver.find_elements(By.CSS_SELECTOR, "svg.trend circle.point")
        ]
        return {"figures": figures, "cells": cells, "bars": bars, "points": points}
    finally:
        driver.quit()


async def test_chart_numbers_equal_the_report_command(dash: Dashboard, db_url: str) -> None:
    today = datetime.now(MOSCOW).date()
    await load_demo(dash.engine, DemoSpec(clients=150, seed=5, until=today))
    client = await dash.store.create_client(ClientInput("NPS1", name="Оценщик"))
    for i, score in enumerate((10, 9, 3, 8, 0)):
        await dash.store.record_nps(
            NewNpsResponse(
                client.id,
                score,
                ChannelKind.TELEGRAM,
                answered_at=datetime.now(UTC) - timedelta(minutes=i + 1),
            )
        )
    first, last = today - timedelta(days=364), today
    month_start = today.replace(day=1)
    shown, report, month = await asyncio.gather(
        asyncio.to_thread(_read_charts, dash.url, first, last),
        asyncio.to_thread(_report_json, db_url, first, last),
        asyncio.to_thread(_report_json, db_url, month_start, today),
    )
    assert shown["cells"] == {k: v for k, v in report["abc_xyz"].items()} | {
        k: 0 for k in shown["cells"] if k not in report["abc_xyz"]
    }
    assert sum(shown["cells"].values()) == sum(report["abc"][k]["clients"] for k in "ABC")
    for name in ("retention_rate", "churn_rate", "repeat_purchase_rate", "purchase_frequency"):
        value, written = shown["figures"][name]
        assert float(value) == report[name], name
        if name != "purchase_frequency":
            assert written == f"{100 * report[name]:.0f} %", name
    for name in ("average_order_value", "ltv"):
        assert shown["figures"][name][0] == report[name], name
    assert shown["bars"] == {
        label: t["coefficient"]
        for label, t in zip(_cohort_labels(report), report["tenure"], strict=True)
        if t["coefficient"] is not None
    }
    _label, nps, n = shown["points"][-1]  # the current month, up to now
    assert int(n) == month["nps"]["responses"]
    assert float(nps) == month["nps"]["score"]


def _cohort_labels(report: dict[str, Any]) -> list[str]:
    from dashboard.repeat_views import COHORT_RU

    return [COHORT_RU[t["cohort"]] for t in report["tenure"]]


DIALOGUE = (
    DialogueLine("robot", 0.0, 0.9, "Здравствуйте"),
    DialogueLine("client", 1.0, 1.9, "Да, слушаю"),
    DialogueLine("robot", 2.0, 2.9, "Оцените нас"),
    DialogueLine("client", 3.0, 3.9, "Девять"),
)


def _play_in_sync(url: str, client_id: int) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        _sign_in(driver, url, "anna")
        driver.get(f"{url}/clients/{client_id}#calls")
        lines = driver.find_elements(By.CSS_SELECTOR, ".dialogue[data-sync] li")
        audio = driver.find_element(By.CSS_SELECTOR, "article.call audio")
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return arguments[0].readyState >= 1", audio)
        )

        def current() -> list[int]:
            return [i for i, li in enumerate(lines) if "current" in li.get_attribute("class")]

        clicked = time.monotonic()
        lines[1].click()  # jump to the client's first phrase
        after_click = current()
        position = driver.execute_script("return arguments[0].currentTime", audio)
        playing_for = time.monotonic() - clicked  # it plays on while we ask
        # playing on: the highlight moves to the next phrases by itself
        WebDriverWait(driver, 10).until(lambda _d: current() and current()[0] >= 2)
        moved = current()
        lines[0].click()
        back = current()
        return {
            "after_click": after_click,
            "position": position,
            "playing_for": playing_for,
            "moved": moved,
            "back": back,
        }
    finally:
        driver.quit()


async def test_clicking_a_phrase_plays_from_it_and_the_highlight_follows(
    dash: Dashboard, tmp_path: Path
) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    write_wav(tmp_path / "call-1.wav", seconds=4.0)
    dash.calls.add(1, client.id, datetime.now(UTC), DIALOGUE, tmp_path / "call-1.wav")
    seen = await asyncio.to_thread(_play_in_sync, dash.url, client.id)
    assert seen["after_click"] == [1]
    # the phrase starts at 1.0 s; the audio has played on for at most the time the reads took
    assert 0.95 <= seen["position"] <= 1.0 + seen["playing_for"] + 0.05
    assert len(seen["moved"]) == 1
    assert seen["moved"][0] >= 2
    assert seen["back"] == [0]


def _widths(url: str, paths: list[str]) -> dict[str, tuple[int, int]]:
    driver = _driver(PHONE_WIDTH)
    try:
        _sign_in(driver, url, "admin")
        found = {}
        for path in paths:
            driver.get(url + path)
            found[path] = (
                driver.execute_script("return document.documentElement.scrollWidth"),
                driver.execute_script("return window.innerWidth"),
            )
        return found
    finally:
        driver.quit()


async def test_every_page_fits_a_400_px_phone_screen(dash: Dashboard, tmp_path: Path) -> None:
    client = await dash.store.create_client(
        ClientInput("C1", name="Константин Длиннофамильный-Двойной", phones=("+79161234567",))
    )
    now = datetime.now(UTC)
    answer = await dash.store.record_nps(
        NewNpsResponse(
            client.id,
            2,
            ChannelKind.CALL,
            reason_text="Доставка опоздала на неделю, курьер не брал трубку, " * 3,
            reason_category=ReasonCategory.DELIVERY,
            answered_at=now - timedelta(hours=1),
        )
    )
    await dash.store.create_task(NewTask(client.id, "detractor", "Позвонить", now))
    write_wav(tmp_path / "call-1.wav", seconds=1.0)
    dash.calls.add(1, client.id, now, DIALOGUE, tmp_path / "call-1.wav")
    paths = [
        "/",
        "/?trend=week",
        "/nps",
        f"/nps/{answer.id}",
        "/why",
        "/repeat",
        "/clients",
        f"/clients/{client.id}",
        "/tasks",
        "/crm",
        "/users",
    ]
    widths = await asyncio.to_thread(_widths, dash.url, paths)
    for path, (scroll, inner) in widths.items():
        assert inner == PHONE_WIDTH, path
        assert scroll <= PHONE_WIDTH, (path, scroll)
