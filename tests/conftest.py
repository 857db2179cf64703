"""Shared fixtures: real databases (a SQLite file and a fresh PostgreSQL database per run)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate import upgrade
from crm_sync.history.store import SqlHistoryStore
from povtor.db import Base, create_engine, session_factory
from tests.pg_server import DEFAULT_URL, ThrowawayPostgres, answers

T = TypeVar("T")


async def _pg_admin(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The PostgreSQL server of this run: ``POVTOR_TEST_PG_URL`` when given, else the local
    server at the default address, else a throwaway server of the run's own (``pg_server``)."""
    given = os.environ.get("POVTOR_TEST_PG_URL")
    if given or answers(DEFAULT_URL):
        yield given or DEFAULT_URL
        return
    server = ThrowawayPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run; dropped at the end."""
    name = f"povtor_test_{uuid.uuid4().hex[:12]}"
    run_blocking(_pg_admin(pg_admin_url, f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        in_thread(upgrade, url)
        yield url
    finally:
        run_blocking(_pg_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    in_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking code that may start its own event loop (Alembic does) off this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in another thread.

    Sync fixtures may be set up while a test's event loop is running (and Alembic runs its own
    loop), so they never call ``asyncio.run`` on the caller's thread.
    """
    return in_thread(asyncio.run, coro)


async def truncate_all(url: str) -> None:
    """Empty every table of the shared metadata (PostgreSQL)."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    engine = create_engine(url)
    async with engine.begin() as conn:
        existing = {
            row[0]
            for row in await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        }
        names = ", ".join(f'"{t}"' for t in tables if t in existing)
        if names:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "povtor.db"
        path.write_bytes(sqlite_template.read_bytes())
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_database_url")
    run_blocking(truncate_all(url))
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> SqlHistoryStore:
    """The client history store over the test database."""
    return SqlHistoryStore(session_factory(engine))
