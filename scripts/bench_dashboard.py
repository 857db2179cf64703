"""Dashboard benchmark: signed-in users browsing every page over real HTTP, against an anchor.

    .venv/bin/python scripts/bench_dashboard.py [--clients 1000000] [--users 20] [--rounds 5]
                                                [--backend postgres] [--database NAME] [--keep]

Loads N demo clients (orders, NPS answers, timeline) into a fresh database (or reuses one kept
by ``--keep``), starts the dashboard service in this process on a free port, signs in U users
and has each fetch every page in turn, all users at once, for R rounds. Beside each round the
same U concurrent tasks run an anchor: a bare ``SELECT 1`` through the same kind of engine,
which is the floor any page that reads the database pays. Rounds alternate anchor and pages (the
order swaps every round, ``bench_common.schedule``).

Printed first: per page the median over the rounds of (page p95 / anchor p95 of the same round),
and the machine's load; then the ratio of each page's p95 to the anchor's p95 over all rounds and
p50/p95/max per page in milliseconds. Target of the issue: p95 under 50 ms per page at 1M
clients and 1M answers with 20 users. The report pages compute their figures on request (no
precomputation yet).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import aiohttp
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    PG_ADMIN_URL,
    Comparison,
    LoadWatch,
    Pair,
    drop_database,
    fresh_database,
    report_first,
    schedule,
)

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo
from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import ClientRow, NpsResponseRow
from crm_sync.metrics.reports import SqlReports
from dashboard.passwords import Passwords
from dashboard.roles import Role
from dashboard.service import DashboardService
from dashboard.users import UserStore
from povtor.db import create_engine, session_factory
from povtor.settings import DashboardSettings, Settings

PASSWORD = "bench-password-1234"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
UNTIL = date(2026, 1, 31)


def pages(client_id: int) -> dict[str, str]:
    return {
        "overview": "/",
        "overview-weeks": "/?trend=week",
        "nps": "/nps",
        "why": "/why",
        "repeat": f"/repeat?from=2025-02-01&to={UNTIL}",
        "clients": "/clients",
        "clients-filtered": "/clients?segment=repeat&nps=detractor",
        "client-card": f"/clients/{client_id}",
        "tasks": "/tasks",
    }


async def sign_in(url: str, login: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get("/login") as page:
        match = CSRF_RE.search(await page.text())
        assert match
    form = {"_csrf": match.group(1), "login": login, "password": PASSWORD, "next": "/"}
    async with http.post("/login", data=form, allow_redirects=False) as response:
        assert response.status == 303, response.status
    return http


async def timed_get(http: aiohttp.ClientSession, path: str) -> float:
    started = time.perf_counter()
    async with http.get(path) as response:
        await response.read()
        assert response.status == 200, (path, response.status)
    return time.perf_counter() - started


async def anchor(engine: object, users: int) -> list[float]:
    async def one() -> float:
        started = time.perf_counter()
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            await conn.execute(text("SELECT 1"))
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one() for _ in range(users))))


async def run(url: str, users: int, rounds: int, watch: LoadWatch, head: list[str]) -> None:
    engine = create_engine(url, pool_size=users)
    anchor_engine = create_engine(url, pool_size=users)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=url,
            data_dir=Path(folder),
            secret_key="bench-secret-key",  # type: ignore[arg-type]
            dashboard=DashboardSettings(
                host="127.0.0.1", port=0, argon2_time_cost=1, argon2_memory_kib=1024
            ),
        )
        store = SqlHistoryStore(session_factory(engine))
        users_store = UserStore(session_factory(engine))
        hashed = await Passwords(settings.dashboard).hash(PASSWORD)
        logins = [f"bench{i}" for i in range(users)]
        for login in logins:
            if await users_store.credentials(login) is None:
                await users_store.create(login, hashed, Role.MANAGER)
        service = DashboardService(
            settings,
            store,
            SqlReports(engine),
            None,
            users=users_store,
            retention=SqlRetentionView(engine, store, settings.default_timezone),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            await service.ready.wait()
            base = f"http://127.0.0.1:{service.bound_port}"
            async with engine.connect() as conn:
                client_id = await conn.scalar(select(func.min(ClientRow.id)))
                answers = await conn.scalar(select(func.count()).select_from(NpsResponseRow))
                clients = await conn.scalar(select(func.count()).select_from(ClientRow))
            lines = [
                *head,
                f"{clients} clients, {answers} NPS answers, {users} users, {rounds} rounds",
            ]
            sessions = await asyncio.gather(*(sign_in(base, login) for login in logins))
            todo = pages(int(client_id or 1))
            times: dict[str, list[float]] = {name: [] for name in todo}
            anchors: list[float] = []
            per_round: dict[tuple[int, str], list[float]] = {}
            for n, side in schedule(rounds):
                for name, path in todo.items():
                    if side == "anchor":
                        got = await anchor(anchor_engine, users)
                        anchors.extend(got)
                    else:
                        got = list(
                            await asyncio.gather(*(timed_get(http, path) for http in sessions))
                        )
                        times[name].extend(got)
                    per_round.setdefault((n, name if side == "subject" else side), []).extend(got)
                watch.sample()
            for http in sessions:
                await http.close()
        finally:
            stop.set()
            await task
    await engine.dispose()
    await anchor_engine.dispose()
    comparisons = [
        Comparison(
            f"{name} p95",
            "SELECT 1 p95",
            tuple(
                Pair(p95(per_round[n, "anchor"]), p95(per_round[n, name])) for n in range(rounds)
            ),
            unit="s (p95)",
        )
        for name in todo
    ]
    a95 = p95(anchors)
    lines.append("ratio page p95 / anchor p95 (bare SELECT 1, same concurrency):")
    for name, values in times.items():
        lines.append(f"  {name:18s} {p95(values) / a95:8.1f}x")
    lines.append(f"anchor SELECT 1: p50 {ms(statistics.median(anchors))}  p95 {ms(a95)}")
    for name, values in times.items():
        lines.append(
            f"{name:18s} p50 {ms(statistics.median(values))}  p95 {ms(p95(values))}  "
            f"max {ms(max(values))}"
        )
    report_first(comparisons, watch, lines)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.1f} ms"


async def load(url: str, clients: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        return await load_demo(engine, DemoSpec(clients, seed=1, until=UNTIL))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--database", default=None, help="Reuse this kept PostgreSQL database.")
    args = parser.parse_args()
    watch = LoadWatch()
    head: list[str] = []
    if args.database:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.database}"
    else:
        url = fresh_database(args.backend, Path(tempfile.gettempdir()))
        started = time.perf_counter()
        counts = asyncio.run(load(url, args.clients))
        head.append(f"loaded {counts} in {time.perf_counter() - started:.0f} s")
        print(head[-1], file=sys.stderr)
    try:
        asyncio.run(run(url, args.users, args.rounds, watch, head))
    finally:
        if not (args.keep or args.database):
            drop_database(url)


if __name__ == "__main__":
    main()
