"""Dashboard benchmark: signed-in users browsing every page over real HTTP, against an anchor.

    .venv/bin/python scripts/bench_dashboard.py [--clients 1000000] [--users 20] [--rounds 5]
                                                [--backend postgres] [--database NAME] [--keep]
                                                [--client-filters] [--pages clients,cl-nps]
                                                [--base 50000] [--answers 1000000]
                                                [--reuse-reports] [--count-reads]
                                                [--cpu-per-request N] [--processes N]
                                                [--different] [--warmup 1]

Loads N demo clients (orders, NPS answers, timeline) into a fresh database (or reuses one kept
by ``--keep``; a ``--database`` not there yet is loaded under that name and kept); on
PostgreSQL the generator writes ``--base`` clients by COPY and the rest are copies of them made
in SQL, with answers copied years back up to ``--answers`` (``bench_scale``). Then it
starts the dashboard service in this process on a free port, signs in U users
and has each fetch every page in turn, all users at once, for R rounds. Beside each page the
same U concurrent tasks run its anchor: bare SQL statements that select the same rows the page
shows (the list it lists, the figures it counts) through the same kind of engine, with no
ORM, no templating and no HTTP: the floor of that page. Rounds alternate anchors and pages
(the order swaps every round, ``bench_common.schedule``). The repeat-sales page shows the report
the worker stores in the background: before the rounds the bench stores it as the worker does
(timed, printed), and that page's anchor reads the stored row.

The users open the same pages at the same moment, so the dashboard's shared pages
(``dashboard.shared_pages``: identical requests in flight get one page) serve most of each
round from one read and one rendering. ``--different`` has each user open a different client
card, answer and page of the NPS, client and task lists, pages no two requests share: the cost
of a page made for every request (the lists' anchors read their first page: a keyset page
elsewhere in the index costs the same). ``--warmup`` rounds (1) run first and are not
counted: the pools' connections opened and their statements prepared, as on a dashboard
serving for a while.

Printed first: per page the median over the rounds of (page p95 / its anchor's p95 of the same
round), and the machine's load; then p50/p95/max per page and per anchor in milliseconds.
Target of the issue: p95 under 50 ms per page at 1M clients and 1M answers with 20 users.
The demo's data ends at ``UNTIL``, so the list pages are asked for all time or for periods
before it (pages bound to today, such as the overview, show today's few rows).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import event, func, select, text

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
from bench_scale import scale_up

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo
from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import ClientRow, NpsResponseRow, TaskRow
from crm_sync.metrics.reports import DEFAULT_ACTIVITY_WINDOW, SqlReports
from crm_sync.metrics.snapshots import ReportSnapshots
from dashboard.paging import nps_cursor_text
from dashboard.passwords import Passwords
from dashboard.roles import Role
from dashboard.service import DashboardService
from dashboard.users import SESSION_CACHE_S, UserStore
from povtor.db import create_engine, session_factory, table_of
from povtor.ports import NpsCursor
from povtor.settings import DashboardSettings, Settings

PASSWORD = "bench-password-1234"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
UNTIL = date(2026, 1, 31)
WHY_FROM = date(2026, 1, 1)


def pages(client_id: int, answer_id: int) -> dict[str, str]:
    return {
        "overview": "/",
        "overview-weeks": "/?trend=week",
        "nps": "/nps?period=all",
        "answer": f"/nps/{answer_id}",
        "why": f"/why?from={WHY_FROM}&to={UNTIL}",
        "repeat": "/repeat",  # the year, as the worker stored it
        "clients": "/clients",
        "clients-filtered": "/clients?segment=repeat&nps=detractor",
        "client-card": f"/clients/{client_id}",
        "tasks": "/tasks",
    }


DETRACTORS = (
    "SELECT id, client_id, score, reason_text, reason_category, answered_at FROM nps_responses "
    "WHERE score BETWEEN 0 AND 6 AND answered_at >= :month_ago "
    "ORDER BY answered_at DESC, id DESC LIMIT 30"
)
GROUPS = (
    "count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score BETWEEN 7 AND 8), "
    "count(*) FILTER (WHERE score <= 6)"
)
ACTIVE_TASKS = (
    "SELECT status, count(*), count(*) FILTER (WHERE due_at < :now) FROM tasks "
    "WHERE status IN ('open', 'in_progress') GROUP BY status"
)
CLIENT_ROWS = (
    "SELECT c.id, c.external_id, c.name, c.telegram_chat_id, c.opted_out_at, s.orders_count, "
    "s.revenue, s.last_order_at, s.last_nps_score, s.last_nps_at, "
    "(SELECT string_agg(p.phone, ', ') FROM client_phones p WHERE p.client_id = c.id) "
    "FROM clients c LEFT JOIN client_stats s ON s.client_id = c.id {where} "
    "ORDER BY c.id LIMIT 51"
)
CLIENT_TASKS = "SELECT * FROM tasks WHERE client_id = {client} ORDER BY due_at, id LIMIT 50"
ACTIVE = "s.last_order_at >= :active_since"
# --client-filters: the client list under each filter and search, beside its anchor's WHERE
CLIENT_FILTERS: dict[str, tuple[str, str]] = {
    "cl-segment": ("segment=repeat", f"s.orders_count >= 2 AND {ACTIVE}"),
    "cl-nps": ("nps=promoter", "s.last_nps_score BETWEEN 9 AND 10"),
    "cl-age": (
        "age=365",
        "s.last_order_at <= CAST(:now AS timestamptz) - interval '181 days' "
        "AND s.last_order_at >= CAST(:now AS timestamptz) - interval '365 days'",
    ),
    "cl-telegram": ("channel=telegram", "c.telegram_chat_id IS NOT NULL AND c.telegram_reachable"),
    "cl-call": ("channel=call", "EXISTS (SELECT 1 FROM client_phones q WHERE q.client_id = c.id)"),
    "cl-consent": (
        "consent=call",
        "EXISTS (SELECT 1 FROM consents k WHERE k.client_id = c.id AND k.channel = 'call' "
        "AND k.granted)",
    ),
    "cl-optout": ("optout=yes", "c.opted_out_at IS NOT NULL"),
    "cl-search": ("q=%D0%98%D0%B2%D0%B0%D0%BD", "c.name ILIKE '%Иван%'"),  # Иван
    "cl-phone": (
        "q=4567",
        "c.id IN (SELECT client_id FROM client_phones WHERE phone LIKE '%4567%')",
    ),
    "cl-next": ("after=50000", "c.id > 50000"),
    "cl-cell": (  # the stored year's AX cell
        f"cell=AX&from={UNTIL - timedelta(days=364)}&to={UNTIL}",
        "c.id IN (SELECT client_id FROM report_cells WHERE period = 'year' AND abc = 'A' "
        "AND xyz = 'X')",
    ),
}

# The rows each page shows, selected with bare SQL: the page's floor.
ANCHORS: dict[str, tuple[str, ...]] = {
    "overview": (
        DETRACTORS,
        f"SELECT {GROUPS} FROM nps_responses WHERE answered_at >= :year_ago AND score IS NOT NULL",
        ACTIVE_TASKS,
    ),
    "overview-weeks": (
        DETRACTORS,
        f"SELECT {GROUPS} FROM nps_responses WHERE answered_at >= :quarter_ago "
        "AND score IS NOT NULL",
        ACTIVE_TASKS,
    ),
    "nps": ("SELECT * FROM nps_responses ORDER BY answered_at DESC, id DESC LIMIT 51",),
    "answer": (
        "SELECT * FROM nps_responses WHERE id = :answer_id",
        "SELECT * FROM clients WHERE id = (SELECT client_id FROM nps_responses "
        "WHERE id = :answer_id)",
        CLIENT_TASKS.format(client="(SELECT client_id FROM nps_responses WHERE id = :answer_id)"),
    ),
    "why": (
        "SELECT answered_at >= :why_from, score >= 7, reason_category, count(*) "
        "FROM nps_responses WHERE answered_at >= :why_before AND answered_at < :until "
        "AND score <= 8 GROUP BY 1, 2, 3",
    ),
    "repeat": ("SELECT * FROM report_snapshots WHERE period = 'year'",),
    "clients": (CLIENT_ROWS.format(where=""),),
    "clients-filtered": (
        CLIENT_ROWS.format(
            where="WHERE s.orders_count >= 2 AND s.last_order_at >= :active_since "
            "AND s.last_nps_score BETWEEN 0 AND 6"
        ),
    ),
    "client-card": (
        "SELECT * FROM clients WHERE id = :client_id",
        "SELECT * FROM client_phones WHERE client_id = :client_id",
        "SELECT * FROM orders WHERE client_id = :client_id "
        "ORDER BY placed_at DESC, id DESC LIMIT 20",
        "SELECT * FROM events WHERE client_id = :client_id ORDER BY at DESC, id DESC LIMIT 51",
        # the timeline's orders (crm_sync_0011: read from orders, merged with the events)
        "SELECT id, client_id, external_id, placed_at, amount, currency FROM orders "
        "WHERE client_id = :client_id ORDER BY placed_at DESC, id DESC LIMIT 51",
        "SELECT * FROM nps_responses WHERE client_id = :client_id "
        "ORDER BY answered_at DESC, id DESC LIMIT 10",
        CLIENT_TASKS.format(client=":client_id"),
    ),
    # a keyset page of 50 (+1 to know there is a next one); 200 before the list had pages
    "tasks": ("SELECT * FROM tasks WHERE status = 'open' ORDER BY due_at, id LIMIT 51",),
}


def anchor_params(client_id: int, answer_id: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "now": now,
        "month_ago": now - timedelta(days=30),
        "quarter_ago": now - timedelta(weeks=12),
        "year_ago": now - timedelta(days=365),
        "active_since": now - DEFAULT_ACTIVITY_WINDOW,
        "client_id": client_id,
        "answer_id": answer_id,
        "why_from": _utc(WHY_FROM),
        "why_before": _utc(WHY_FROM) - (_utc(UNTIL) - _utc(WHY_FROM)),
        "until": _utc(UNTIL) + timedelta(days=1),
    }


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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


async def anchor(
    engine: object, statements: tuple[str, ...], params: list[dict[str, object]]
) -> list[float]:
    """The statements for each user at once (``params``: one set per user)."""

    async def one(values: dict[str, object]) -> float:
        started = time.perf_counter()
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            for statement in statements:
                (await conn.execute(text(statement), values)).all()
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(values) for values in params)))


UserPages = tuple[tuple[int, int], dict[str, str]]  # (client, answer) and the pages by name


async def spread_pages(engine: Any, users: int) -> list[UserPages]:
    """Per user, pages no other user opens: a client card and an answer spread over the
    answers, and a page of the NPS list, the client list and the task list starting there."""
    answers, tasks = table_of(NpsResponseRow), table_of(TaskRow)
    pages_of = []
    async with engine.connect() as conn:
        low, high = (
            await conn.execute(select(func.min(answers.c.id), func.max(answers.c.id)))
        ).one()
        count = await conn.scalar(
            select(func.count()).select_from(tasks).where(tasks.c.status == "open")
        )
        for n in range(users):
            at = low + (high - low) * n // users
            answer = (
                await conn.execute(
                    select(answers.c.client_id, answers.c.id, answers.c.answered_at)
                    .where(answers.c.id >= at)
                    .order_by(answers.c.id)
                    .limit(1)
                )
            ).one()
            task = (
                await conn.execute(
                    select(tasks.c.due_at, tasks.c.id)
                    .where(tasks.c.status == "open")
                    .order_by(tasks.c.due_at, tasks.c.id)
                    .offset((count or 0) * n // users)
                    .limit(1)
                )
            ).first()
            ids = (int(answer.client_id), int(answer.id))
            own = pages(*ids)
            cursor = nps_cursor_text(NpsCursor(answer.answered_at, answer.id))
            own["nps"] = f"/nps?period=all&before={cursor}"
            own["clients"] = f"/clients?after={answer.client_id}"
            own["clients-filtered"] = f"{own['clients-filtered']}&after={answer.client_id}"
            if task is not None:
                own["tasks"] = f"/tasks?after={nps_cursor_text(NpsCursor(task.due_at, task.id))}"
            pages_of.append((ids, own))
    return pages_of


async def run(
    url: str,
    users: int,
    rounds: int,
    pool: int,
    watch: LoadWatch,
    head: list[str],
    client_filters: bool = False,
    only: frozenset[str] = frozenset(),
    reuse_reports: bool = False,
    count_reads: bool = False,
    processes: int = 0,
    cpu_requests: int = 0,
    different: bool = False,
    warmup: int = 1,
) -> None:
    # a pool like the worker's (5-20 by its concurrency): users beyond it wait their turn
    # without a ping per checkout, as the worker's dashboard reads; the anchors get a
    # connection each that stays pooled (none opened during a round)
    engine = create_engine(url, pool_size=pool, pre_ping=False)
    anchor_engine = create_engine(url, pool_size=max(pool, users), pre_ping=False)
    with tempfile.TemporaryDirectory() as folder:
        settings = bench_settings(url, Path(folder), 0)
        users_store = UserStore(session_factory(engine))
        hashed = await Passwords(settings.dashboard).hash(PASSWORD)
        logins = [f"bench{i}" for i in range(users)]
        for login in logins:
            if await users_store.credentials(login) is None:
                await users_store.create(login, hashed, Role.MANAGER)
        stop = asyncio.Event()
        servers = Servers(url, pool, processes) if processes else None
        service = None if servers else build_service(settings, engine)
        task = asyncio.create_task(service.run(stop)) if service else None
        try:
            if servers:
                port = await servers.start()
                head.append(
                    f"served by {processes} processes sharing one port, pool {servers.pool} each"
                )
            else:
                assert service is not None
                await service.ready.wait()
                port = int(service.bound_port or 0)
            base = f"http://127.0.0.1:{port}"
            async with engine.connect() as conn:
                client_id = await conn.scalar(select(func.min(ClientRow.id)))
                answer_id = await conn.scalar(select(func.max(NpsResponseRow.id)))
                answers = await conn.scalar(select(func.count()).select_from(NpsResponseRow))
                clients = await conn.scalar(select(func.count()).select_from(ClientRow))
            # what the worker's background refresh does, as of the demo's last day (a year of
            # orders): the page reads the stored year
            started = time.perf_counter()
            snapshots = ReportSnapshots(engine, settings.default_timezone)
            stored = await snapshots.latest("year") if reuse_reports else None
            if stored is None:
                await snapshots.refresh(
                    datetime.combine(UNTIL, datetime.min.time(), UTC) + timedelta(hours=12)
                )
            refreshed = time.perf_counter() - started
            lines = [
                *head,
                f"{clients} clients, {answers} NPS answers, {users} users, {rounds} rounds",
                f"repeat-sales reports of the 4 periods stored in {refreshed:.1f} s"
                if stored is None
                else f"repeat-sales reports reused, stored at {stored.computed_at:%Y-%m-%d %H:%M}",
            ]
            sessions = await asyncio.gather(*(sign_in(base, login) for login in logins))
            if different:
                per_user = await spread_pages(engine, users)
                lines.append(
                    "each user on a different client card, answer and page of the NPS, client "
                    "and task lists (the lists' anchors read their first page)"
                )
            else:
                ids = (int(client_id or 1), int(answer_id or 1))
                per_user = [(ids, pages(*ids))] * users
            todo = dict(per_user[0][1])
            if client_filters:
                for name, (query, where) in CLIENT_FILTERS.items():
                    todo[name] = f"/clients?{query}"
                    ANCHORS[name] = (CLIENT_ROWS.format(where=f"WHERE {where}"),)
            if only:
                todo = {name: path for name, path in todo.items() if name in only}
            paths = {
                name: [user_pages.get(name, path) for _, user_pages in per_user]
                for name, path in todo.items()
            }
            params = [anchor_params(*ids) for ids, _ in per_user]
            if count_reads and not servers:  # the statements of this process's engine
                lines.extend(await reads_per_page(engine, sessions[0], todo))
            if cpu_requests and not servers:
                lines.extend(await cpu_per_page(sessions[0], todo, cpu_requests))
            if engine.dialect.name == "sqlite":
                ANCHORS.update(
                    {k: tuple(q.replace("string_agg(", "group_concat(") for q in v)
                     for k, v in ANCHORS.items()}
                )  # fmt: skip
            times: dict[str, list[float]] = {name: [] for name in todo}
            anchors: dict[str, list[float]] = {name: [] for name in todo}
            per_round: dict[tuple[int, str, str], list[float]] = {}

            async def browse(name: str) -> list[float]:
                return list(
                    await asyncio.gather(
                        *(
                            timed_get(http, user_path)
                            for http, user_path in zip(sessions, paths[name], strict=True)
                        )
                    )
                )

            # not counted: the pools' connections opened and their statements prepared, as on
            # a dashboard that has been serving for a while
            for _ in range(warmup):
                for name in todo:
                    await anchor(anchor_engine, ANCHORS[name], params)
                    await browse(name)
            if warmup:
                lines.append(f"{warmup} warm-up round(s) before, not counted")
            for n, side in schedule(rounds):
                for name in todo:
                    if side == "anchor":
                        got = await anchor(anchor_engine, ANCHORS[name], params)
                        anchors[name].extend(got)
                    else:
                        got = await browse(name)
                        times[name].extend(got)
                    per_round[n, side, name] = got
                watch.sample()
            for http in sessions:
                await http.close()
        finally:
            stop.set()
            if task:
                await task
            if servers:
                servers.stop()
    await engine.dispose()
    await anchor_engine.dispose()
    comparisons = [
        Comparison(
            f"{name} p95",
            "bare SELECT of its rows p95",
            tuple(
                Pair(p95(per_round[n, "anchor", name]), p95(per_round[n, "subject", name]))
                for n in range(rounds)
            ),
            unit="s (p95)",
        )
        for name in todo
    ]
    lines.append("per page over all rounds (page | its anchor: bare SELECT of the same rows):")
    for name, values in times.items():
        lines.append(
            f"{name:18s} p50 {ms(statistics.median(values))}  p95 {ms(p95(values))}  "
            f"max {ms(max(values))} | anchor p95 {ms(p95(anchors[name]))}  "
            f"ratio {p95(values) / p95(anchors[name]):6.1f}x"
        )
    report_first(comparisons, watch, lines)


def bench_settings(url: str, folder: Path, port: int) -> Settings:
    return Settings(
        database_url=url,
        data_dir=folder,
        secret_key=SecretStr("bench-secret-key"),
        dashboard=DashboardSettings(
            host="127.0.0.1", port=port, argon2_time_cost=1, argon2_memory_kib=1024
        ),
    )


def build_service(settings: Settings, engine: Any, reuse_port: bool = False) -> DashboardService:
    store = SqlHistoryStore(session_factory(engine))
    return DashboardService(
        settings,
        store,
        SqlReports(engine),
        None,
        # several processes read the session per request, as POVTOR_DASHBOARD_PROCESSES does
        users=UserStore(session_factory(engine), cache_s=0.0 if reuse_port else SESSION_CACHE_S),
        retention=SqlRetentionView(engine, store, settings.default_timezone),
        reuse_port=reuse_port,
    )


class Servers:
    """``--processes N``: the dashboard served by N processes of its own on one port
    (SO_REUSEPORT, as ``POVTOR_DASHBOARD_PROCESSES`` does), the bench's client and anchors
    here; the pool split between them."""

    def __init__(self, url: str, pool: int, processes: int) -> None:
        self.url = url
        self.processes = processes
        self.pool = max(1, pool // processes)
        context = multiprocessing.get_context("spawn")
        self._context = context
        self._stop = context.Event()
        self._ports: Any = context.Queue()
        self._children: list[Any] = []

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        port = 0
        for _ in range(self.processes):  # the first picks the port, the others join it
            child = self._context.Process(
                target=serve, args=(self.url, port, self.pool, self._ports, self._stop)
            )
            child.start()
            self._children.append(child)
            port = await loop.run_in_executor(None, self._ports.get, True, 120)
        return port

    def stop(self) -> None:
        self._stop.set()
        for child in self._children:
            child.join(30)


def serve(url: str, port: int, pool: int, ports: Any, stop: Any) -> None:
    asyncio.run(_serve(url, port, pool, ports, stop))


async def _serve(url: str, port: int, pool: int, ports: Any, stop: Any) -> None:
    engine = create_engine(url, pool_size=pool, pre_ping=False)
    with tempfile.TemporaryDirectory() as folder:
        service = build_service(bench_settings(url, Path(folder), port), engine, reuse_port=True)
        stopped = asyncio.Event()
        task = asyncio.create_task(service.run(stopped))
        await service.ready.wait()
        ports.put(service.bound_port)
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        stopped.set()
        await task
    await engine.dispose()


async def reads_per_page(
    engine: Any, http: aiohttp.ClientSession, todo: dict[str, str]
) -> list[str]:
    """Pool checkouts and statements of one request of each page (its second: the figures'
    cache warm, as in the rounds); noise-free beside the times."""
    counts = {"checkout": 0, "statement": 0}

    def count(what: str) -> Callable[..., None]:
        return lambda *_: counts.__setitem__(what, counts[what] + 1)

    on_checkout, on_statement = count("checkout"), count("statement")
    event.listen(engine.sync_engine.pool, "checkout", on_checkout)
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    lines = ["reads per request (connections checked out, statements):"]
    try:
        for name, path in todo.items():
            await timed_get(http, path)
            counts.update(checkout=0, statement=0)
            await timed_get(http, path)
            lines.append(f"{name:18s} {counts['checkout']:3d} {counts['statement']:3d}")
    finally:
        event.remove(engine.sync_engine.pool, "checkout", on_checkout)
        event.remove(engine.sync_engine, "before_cursor_execute", on_statement)
    return lines


async def cpu_per_page(http: aiohttp.ClientSession, todo: dict[str, str], n: int) -> list[str]:
    """CPU of this process (server and bench client) per request, one user, ``n`` requests
    of each page after 3 unmeasured: far less noisy than times on a shared machine, since
    waiting for the database or for a core is not counted."""
    lines = [f"CPU per request, one user, {n} requests (server and client in this process):"]
    for name, path in todo.items():
        for _ in range(3):
            await timed_get(http, path)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await timed_get(http, path)
        spent, took = time.process_time() - cpu, time.perf_counter() - started
        lines.append(f"{name:18s} cpu {ms(spent / n)}  wall {ms(took / n)}")
    return lines


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.1f} ms"


async def load(url: str, clients: int, base: int = 0, answers: int = 0) -> dict[str, int]:
    """The demo business of ``clients`` clients; with ``base`` (PostgreSQL), only that many
    generated and the rest copied in SQL (``bench_scale``), up to ``answers`` NPS answers."""
    engine = create_engine(url)
    try:
        generated = min(clients, base) if base and engine.dialect.name == "postgresql" else 0
        counts = await load_demo(engine, DemoSpec(generated or clients, seed=1, until=UNTIL))
        if generated and (clients > generated or answers > counts["nps_responses"]):
            return await scale_up(engine, clients, answers, say=_say)
        return counts
    finally:
        await engine.dispose()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _exists(name: str) -> bool:
    engine = create_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
        return found is not None
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--pool", type=int, default=10, help="Connections per engine (+ as many).")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--database", default=None, help="Reuse this kept PostgreSQL database.")
    parser.add_argument(
        "--client-filters",
        action="store_true",
        help="Also the client list under each filter, search and an ABC/XYZ cell (PostgreSQL).",
    )
    parser.add_argument("--pages", default="", help="Only these pages (comma-separated names).")
    parser.add_argument(
        "--base",
        type=int,
        default=50_000,
        help="PostgreSQL: clients the demo generator writes (COPY); the rest are copies of them "
        "made in SQL (0: generate every client).",
    )
    parser.add_argument(
        "--reuse-reports",
        action="store_true",
        help="Keep the reports a kept database has stored (storing them takes minutes at 1M).",
    )
    parser.add_argument(
        "--count-reads",
        action="store_true",
        help="Also print the connections and statements of one request of each page.",
    )
    parser.add_argument(
        "--cpu-per-request",
        type=int,
        default=0,
        metavar="N",
        help="Also print the CPU of N requests of each page by one user (in this process).",
    )
    parser.add_argument(
        "--answers", type=int, default=1_000_000, help="NPS answers at least (with --base)."
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="Rounds of every page and anchor before the counted ones (0: none).",
    )
    parser.add_argument(
        "--different",
        action="store_true",
        help="Each user opens a different client card, answer and list page (none shared).",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="Serve the dashboard from N processes of its own sharing the port (0: in this one).",
    )
    args = parser.parse_args()
    watch = LoadWatch()
    head: list[str] = []
    if args.database and asyncio.run(_exists(args.database)):
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.database}"
    else:  # a --database not there yet is loaded under that name and kept
        url = fresh_database(args.backend, Path(tempfile.gettempdir()), args.database)
        started = time.perf_counter()
        counts = asyncio.run(load(url, args.clients, args.base, args.answers))
        head.append(f"loaded {counts} in {time.perf_counter() - started:.0f} s")
        print(head[-1], file=sys.stderr)
    try:
        only = frozenset(filter(None, args.pages.split(",")))
        asyncio.run(
            run(
                url,
                args.users,
                args.rounds,
                args.pool,
                watch,
                head,
                args.client_filters,
                only,
                args.reuse_reports,
                args.count_reads,
                args.processes,
                args.cpu_per_request,
                args.different,
                args.warmup,
            )
        )
    finally:
        if not (args.keep or args.database):
            drop_database(url)


if __name__ == "__main__":
    main()
