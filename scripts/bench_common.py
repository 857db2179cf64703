"""Shared by the benchmark scripts: throwaway databases and measured `povtor` processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from povtor.db import create_engine
from povtor.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "POVTOR_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
POVTOR = str(Path(sys.executable).with_name("povtor"))


async def _pg_admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def fresh_database(backend: str, folder: Path, name: str | None = None) -> str:
    """A new migrated database: a SQLite file in ``folder`` or a PostgreSQL database."""
    name = name or f"povtor_bench_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        path = folder / f"{name}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    output: dict[str, Any]


def run_measured(url: str, *args: str) -> Measured:
    """Run ``povtor ARGS --json``; wall time and peak RSS (sampled every 50 ms)."""
    env = {**os.environ, "POVTOR_DATABASE_URL": url, "POVTOR_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [POVTOR, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)  # sampling, not synchronisation
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"povtor {' '.join(args)} failed:\n{err.decode()}")
    lines = [line for line in out.decode().splitlines() if line.strip()]
    return Measured(seconds, peak / 2**20, json.loads(lines[-1]))
