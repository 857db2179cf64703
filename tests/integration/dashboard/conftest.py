"""A running dashboard over real HTTP, on the test database, with users of every role."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import SqlHistoryStore
from crm_sync.metrics.reports import SqlReports
from dashboard.passwords import Passwords
from dashboard.roles import Role
from dashboard.service import DashboardService
from dashboard.users import UserStore
from povtor.db import session_factory
from povtor.health import HealthBoard
from povtor.ports import ClientEraser, CrmSyncView, DeadLetters, OutreachControl
from povtor.settings import DashboardSettings, Settings
from tests.fakes.dashboard_calls import FakeCallHistory
from tests.integration.crm.conftest import bitrix  # noqa: F401 (the fake portal, a fixture)

PASSWORD = "верный-пароль-123"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def dashboard_settings(**overrides: object) -> DashboardSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "login_max_failures": 3,
        "login_lockout_s": 300.0,
        "page_size": 5,
    }
    values.update(overrides)
    return DashboardSettings(**values)  # type: ignore[arg-type]


@dataclass
class Dashboard:
    url: str
    store: SqlHistoryStore
    users: UserStore
    calls: FakeCallHistory
    settings: Settings
    engine: AsyncEngine
    service: DashboardService | None = None

    async def add_user(self, login: str, role: Role, password: str = PASSWORD) -> None:
        hashed = await Passwords(self.settings.dashboard).hash(password)
        await self.users.create(login, hashed, role)

    def client(self) -> aiohttp.ClientSession:
        """A browser-like client: keeps cookies (also for 127.0.0.1), does not follow redirects."""
        return aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(
        self, http: aiohttp.ClientSession, login: str, password: str = PASSWORD
    ) -> aiohttp.ClientResponse:
        async with http.get("/login") as page:
            token = csrf_of(await page.text())
        form = {"_csrf": token, "login": login, "password": password, "next": "/"}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            await response.read()
            return response

    async def signed_in(self, login: str) -> aiohttp.ClientSession:
        http = self.client()
        response = await self.login(http, login)
        assert response.status == 303, response.status
        return http


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
async def dash(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> AsyncIterator[Dashboard]:
    async with serving(engine, store, db_url, tmp_path) as d:
        yield d


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@asynccontextmanager
async def serving(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    db_url: str,
    tmp_path: Path,
    *,
    crm: CrmSyncView | None = None,
    transcription_off: str | None = None,
    outreach: OutreachControl | None = None,
    health: HealthBoard | None = None,
    dashboard: dict[str, object] | None = None,
    dead_letters: Sequence[DeadLetters] = (),
    erasure: ClientEraser | None = None,
) -> AsyncIterator[Dashboard]:
    """The dashboard service running on a free port, with admin, anna (manager), vera (viewer)."""
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_key="test-secret-key",  # type: ignore[arg-type]
        dashboard=dashboard_settings(**(dashboard or {})),
    )
    users = UserStore(session_factory(engine))
    calls = FakeCallHistory()
    service = DashboardService(
        settings,
        store,
        SqlReports(engine),
        calls,
        users=users,
        crm=crm,
        retention=SqlRetentionView(engine, store),
        transcription_off=transcription_off,
        outreach=outreach,
        health=health,
        dead_letters=dead_letters,
        erasure=erasure,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        async with asyncio.timeout(10):
            await service.ready.wait()
        d = Dashboard(
            f"http://127.0.0.1:{service.bound_port}",
            store,
            users,
            calls,
            settings,
            engine,
            service,
        )
        for login, role in (("admin", Role.ADMIN), ("anna", Role.MANAGER), ("vera", Role.VIEWER)):
            await d.add_user(login, role)
        yield d
    finally:
        stop.set()
        await task
