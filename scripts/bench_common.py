"""Shared by the benchmark scripts: throwaway databases and measured `povtor` processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from app.migrate import upgrade
from povtor.db import create_engine

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
    cpu_seconds: float = 0.0  # user + sys of the povtor process
    server_cpu_seconds: float | None = None  # PostgreSQL processes (whole server: approximate)

    def cpu(self) -> str:
        server = "" if self.server_cpu_seconds is None else f" + pg {self.server_cpu_seconds:.1f}"
        return f"cpu {self.cpu_seconds:.1f}{server} s"


def _postgres_cpu() -> float:
    """User+sys seconds of every PostgreSQL process, reaped workers included (postmaster
    children). The server is shared by other sessions, so a delta of it is an upper bound."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] not in ("postgres", "postmaster"):
            continue
        try:
            t = proc.cpu_times()
            total += t.user + t.system
            parent = proc.parent()
            if parent is None or parent.name() not in ("postgres", "postmaster"):
                total += t.children_user + t.children_system  # the postmaster: reaped ones
        except psutil.Error:
            continue
    return total


def run_measured(url: str, *args: str) -> Measured:
    """Run ``povtor ARGS --json``: wall time, peak RSS (sampled every 50 ms) and CPU time."""
    env = {**os.environ, "POVTOR_DATABASE_URL": url, "POVTOR_LOG_LEVEL": "WARNING"}
    pg = url.startswith("postgresql")
    server_before = _postgres_cpu() if pg else 0.0
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([POVTOR, *args, "--json"], stdout=out, stderr=err, env=env)
        watched = psutil.Process(proc.pid)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.NoSuchProcess):
                peak = max(peak, watched.memory_info().rss)
            time.sleep(0.05)  # sampling, not synchronisation
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        server = _postgres_cpu() - server_before if pg else None
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"povtor {' '.join(args)} failed:\n{stderr.decode()}")
    peak = max(peak, usage.ru_maxrss * 1024)
    lines = [line for line in stdout.decode().splitlines() if line.strip()]
    return Measured(
        seconds,
        peak / 2**20,
        json.loads(lines[-1]),
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        server_cpu_seconds=server,
    )
