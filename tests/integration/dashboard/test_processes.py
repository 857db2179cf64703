"""The dashboard served by several processes (``POVTOR_DASHBOARD_PROCESSES``): a real extra
process and the worker's own dashboard on one database behave as one for users and attackers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dashboard_processes import HealthPublisher, build_dashboard
from crm_sync.history.store import SqlHistoryStore
from dashboard.context import SESSION_COOKIE
from dashboard.passwords import Passwords
from dashboard.roles import Role
from dashboard.service import DashboardService
from dashboard.shared_health import SqlHealthFeed
from dashboard.users import UserStore
from povtor.db import session_factory
from povtor.health import ComponentHealth, HealthBoard, HealthState
from povtor.settings import Settings
from tests.integration.dashboard.conftest import PASSWORD, csrf_of, dashboard_settings

ROOT = Path(__file__).parents[3]
WORKER = "host:1:abcdef"
SECRET = "test-secret-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Two:
    here: str  # the worker's own dashboard, in this process
    there: str  # an extra process serving the dashboard
    users: UserStore
    board: HealthBoard
    feed: SqlHealthFeed


@pytest.fixture
async def two(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> AsyncIterator[Two]:
    limits = {"login_max_failures": 3, "processes": 2}
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_key=SecretStr(SECRET),
        dashboard=dashboard_settings(**limits),
    )
    sessions = session_factory(engine)
    users = UserStore(sessions)
    hashed = await Passwords(settings.dashboard).hash(PASSWORD)
    await users.create("anna", hashed, Role.MANAGER)
    board = HealthBoard()
    service, feed = build_dashboard(
        settings,
        engine,
        sessions,
        store,
        worker_id=WORKER,
        board=board,
        calls=None,
        outreach=None,
        transcription_off=None,
    )
    assert isinstance(service, DashboardService)
    assert isinstance(feed, SqlHealthFeed)
    port = _free_port()
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(tmp_path),
        "POVTOR_SECRET_KEY": SECRET,
        "POVTOR_DASHBOARD_HOST": "127.0.0.1",
        "POVTOR_DASHBOARD_PORT": str(port),
        "POVTOR_DASHBOARD_PROCESSES": "2",
        "POVTOR_DASHBOARD_LOGIN_MAX_FAILURES": "3",
        "POVTOR_LOG_LEVEL": "INFO",
    }
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.dashboard_processes", "--worker", WORKER),
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        assert child.stderr is not None
        async with asyncio.timeout(60):  # the process says when it listens
            while b"dashboard on http://" not in (line := await child.stderr.readline()):
                assert line, "the dashboard process ended before it listened"
            await service.ready.wait()
        here = f"http://127.0.0.1:{service.bound_port}"
        yield Two(here, f"http://127.0.0.1:{port}", users, board, feed)
    finally:
        stop.set()
        await task
        child.terminate()
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == 0  # stopped cleanly by SIGTERM


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(http: aiohttp.ClientSession, base: str, password: str = PASSWORD) -> int:
    async with http.get(f"{base}/login") as page:
        token = csrf_of(await page.text())
    form = {"_csrf": token, "login": "anna", "password": password, "next": "/"}
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as response:
        await response.read()
        return response.status


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url, allow_redirects=False) as response:
        await response.read()
        return response.status


async def test_a_session_signed_out_in_one_process_is_gone_in_the_other_at_once(
    two: Two,
) -> None:
    async with _browser() as http:
        assert await _login(http, two.here) == 303
        token = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
        assert await _status(http, f"{two.there}/tasks") == 200  # the same session there
        async with http.get(f"{two.there}/tasks") as page:
            csrf = csrf_of(await page.text())
        async with http.post(
            f"{two.there}/logout", data={"_csrf": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 303
        http.cookie_jar.update_cookies({SESSION_COOKIE: token})  # a copied cookie: refused
        assert await _status(http, f"{two.here}/tasks") == 303
        assert await _status(http, f"{two.there}/tasks") == 303


async def test_a_new_role_or_password_made_in_one_process_holds_in_the_other_at_once(
    two: Two,
) -> None:
    async with _browser() as http:
        assert await _login(http, two.there) == 303
        assert await _status(http, f"{two.there}/users") == 403  # a manager
        await two.users.set_role("anna", Role.ADMIN)  # the worker's process
        assert await _status(http, f"{two.there}/users") == 200
        await two.users.set_password("anna", "другой-пароль-456")
        assert await _status(http, f"{two.there}/tasks") == 303  # signed out everywhere


async def test_failed_sign_ins_in_both_processes_add_up_to_one_lockout(two: Two) -> None:
    async with _browser() as http:
        assert await _login(http, two.here, "wrong-1") == 401
        assert await _login(http, two.there, "wrong-2") == 401
        assert await _login(http, two.here, "wrong-3") == 401
        assert await _login(http, two.there) == 429  # locked: even the right password waits
        assert await _login(http, two.here) == 429


class Recorded:
    """The real feed, telling the test when the publisher has written."""

    def __init__(self, feed: SqlHealthFeed) -> None:
        self.feed = feed
        self.published: asyncio.Queue[list[str]] = asyncio.Queue()

    async def publish(self, components: Sequence[ComponentHealth]) -> None:
        await self.feed.publish(components)
        await self.published.put(sorted(c.name for c in components))

    async def problems(self) -> Sequence[ComponentHealth]:
        return await self.feed.problems()


async def test_the_workers_component_health_shows_on_the_other_processes_overview(
    two: Two,
) -> None:
    feed = Recorded(two.feed)
    publisher = HealthPublisher(two.board, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        async with asyncio.timeout(10):
            assert await feed.published.get() == ["dashboard"]  # the worker's own, listening
            two.board.report("sip-trunk", HealthState.DOWN, "trunk 10.0.0.5 does not answer")
            assert await feed.published.get() == ["dashboard", "sip-trunk"]
        async with _browser() as http:
            assert await _login(http, two.there) == 303
            async with http.get(f"{two.there}/") as page:
                html = await page.text()
            assert "sip-trunk" in html
            assert "trunk 10.0.0.5 does not answer" in html
            async with asyncio.timeout(10):
                two.board.ok("sip-trunk")
                assert await feed.published.get() == ["dashboard", "sip-trunk"]
            async with http.get(f"{two.there}/") as page:
                assert "sip-trunk" not in await page.text()
    finally:
        stop.set()
        await task
    assert await two.feed.problems() == []  # a stopped worker clears what it published
