"""Planner throughput: one full planning pass over N clients / ~10 N orders on PostgreSQL.

    .venv/bin/python scripts/bench_planner.py [--clients 1000000] [--orders-per-client 10]
                                              [--rounds 3] [--keep] [--name NAME] [--url URL]
                                              [--before DIR]

The history is generated in the database with set-based SQL (generate_series): per client a
time zone, a cycle of 7-120 days, 1 to 2x(orders-per-client)-1 orders with jitter, a product
category for most orders, deliveries, NPS answers for some, Telegram links for a third and
advertising consents (call and Telegram: granted for 8 clients in 10, refused for one, none
recorded for one), so reorder and win-back attempts are planned too.
Then, alternately for ``--rounds`` rounds, the anchor and the real planner: the anchor is the
floor of any planning pass, one ``SELECT client_id, count(*), max(placed_at) FROM orders GROUP BY
client_id`` over the same orders, every row fetched (every order read once); the planner is a
first pass over an empty queue (candidates for reorder, NPS and win-back in keyset pages of
10,000 clients, every purpose of a page from one read, policies, attempts written; the attempts
are truncated before each round, outside the figure). Printed first: the median ratio
planner / floor and the machine's load; then the generation line and ``planning pass: N s``
(the median round) with the process's peak RSS, and the CPU of each round's pass (Python's, and
its PostgreSQL backends' read from ``/proc`` when the server runs on this machine).
``--before DIR`` (a source tree of earlier code, e.g. ``git archive COMMIT | tar -x -C DIR``)
also runs that code's pass in each round (a child process importing from DIR): its ratio to the
floor and this code's time over its time per round are printed beside the first ratio. With
``--before-revision REV`` that pass runs on the schema of that code: the database goes down to
REV (this code's migrations; the attempts are empty then, so it is quick) before it and back up
to the heads after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from povtor.db import create_engine

GENERATE = [
    """
    INSERT INTO clients (id, external_id, name, timezone, preferred_channel, telegram_chat_id,
                         telegram_reachable, created_at, updated_at)
    SELECT g, 'B' || g, '',
           (ARRAY['Europe/Moscow', 'Asia/Yekaterinburg', 'Asia/Novosibirsk',
                  'Asia/Vladivostok', 'Asia/Kamchatka', 'Europe/Kaliningrad'])[1 + g % 6],
           CASE WHEN g % 10 = 0 THEN 'call' END,
           CASE WHEN g % 3 = 0 THEN g END, true, now(), now()
    FROM generate_series(1, :clients) AS g
    """,
    "SELECT setval(pg_get_serial_sequence('clients', 'id'), :clients)",
    """
    INSERT INTO orders (external_id, client_id, placed_at, delivered_at, amount, currency,
                        category, created_at, updated_at)
    SELECT 'O' || c.g || '-' || k.k, c.g,
           now() - make_interval(days => (c.silence + k.k * c.cycle + (k.k * 7 + c.g) % 5)::int),
           now() - make_interval(
               days => (c.silence + k.k * c.cycle + (k.k * 7 + c.g) % 5 - 2)::int),
           100 + (c.g + k.k) % 900, 'RUB',
           (ARRAY['кофе', 'чай', 'посуда', 'подарки', NULL])[1 + (c.g + k.k) % 5],
           now(), now()
    FROM (SELECT g, 7 + (g * 37) % 114 AS cycle, (g * 13) % 200 AS silence,
                 1 + (g * 7919) % (2 * :per_client - 1) AS n
          FROM generate_series(1::bigint, :clients) AS g) AS c
    CROSS JOIN LATERAL generate_series(0, c.n - 1) AS k(k)
    """,
    """
    INSERT INTO nps_responses (client_id, score, channel, answered_at)
    SELECT g, g % 11, 'call', now() - make_interval(days => (g % 200)::int)
    FROM generate_series(1, :clients, 4) AS g
    """,
    """
    INSERT INTO consents (client_id, channel, kind, granted, source, at)
    SELECT g, ch, 'advertising', g % 10 < 8, 'bench', now()
    FROM generate_series(1, :clients) AS g CROSS JOIN (VALUES ('call'), ('telegram')) AS v(ch)
    WHERE g % 10 <> 9
    """,
    "ANALYZE",
]


async def generate(url: str, clients: int, per_client: int) -> tuple[int, float]:
    engine = create_engine(url)
    start = time.perf_counter()
    async with engine.begin() as conn:
        for sql in GENERATE:
            await conn.execute(text(sql), {"clients": clients, "per_client": per_client})
    async with engine.connect() as conn:
        orders = (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one()
    await engine.dispose()
    return int(orders), time.perf_counter() - start


FLOOR = "SELECT client_id, count(*), max(placed_at) FROM orders GROUP BY client_id"
RESET = "TRUNCATE outreach_outcomes, outreach_contacts, outreach_attempts RESTART IDENTITY"


async def floor(url: str) -> float:
    """The anchor: every order read once, grouped per client, each group fetched."""
    engine = create_engine(url)
    start = time.perf_counter()
    async with engine.connect() as conn:
        result = await conn.stream(text(FLOOR))
        async for _ in result.partitions(10_000):
            pass
    elapsed = time.perf_counter() - start
    await engine.dispose()
    return elapsed


async def reset(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(RESET))
    await engine.dispose()


def backend_cpu_s(pids: list[int]) -> float | None:
    """User + system CPU seconds of the server processes ``pids`` (None: not on this machine)."""
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
    return total


async def plan(url: str, batch: int) -> tuple[int, float, float, float | None]:
    """One pass: attempts created, seconds, Python's CPU seconds and the backends' (the pool's
    connections live until the engine is disposed, so their CPU is read just before)."""
    from datetime import timedelta

    from crm_sync.history.planning_source import SqlPlanningSource
    from outreach.holiday_calendar import holiday_check
    from outreach.planner import Planner
    from outreach.queue import AttemptQueue
    from outreach.rules import contact_rules, planning_rules
    from povtor.db import session_factory
    from povtor.settings import OutreachSettings, TelegramSettings

    engine = create_engine(url)
    sessions = session_factory(engine)
    out = OutreachSettings(_env_file=None)
    planner = Planner(
        SqlPlanningSource(sessions),
        AttemptQueue(sessions, worker_id="bench", lease=timedelta(seconds=60)),
        contact_rules(out, TelegramSettings(_env_file=None)),
        planning_rules(out),
        is_holiday=holiday_check("RU"),
        batch_size=batch,
    )
    own = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    created = await planner.run_once()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    python_s = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
    async with engine.connect() as conn:
        pids = (
            await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).scalars()
        server_s = backend_cpu_s(list(pids))
    await engine.dispose()
    return created, elapsed, python_s, server_s


def plan_before(source: Path, url: str, batch: int) -> tuple[int, float, float, float | None]:
    """``plan`` in a child process importing the code of ``source`` first."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(
        [sys.executable, __file__, "--url", url, "--batch", str(batch), "--pass-only"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the code before's pass failed: {done.stderr.strip()[-2000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return got["created"], got["seconds"], got["python_s"], got["server_s"]


def migrate(url: str, revision: str) -> None:
    """The database at ``revision`` (down or up), Alembic's logging kept quiet."""
    from alembic import command

    from app.migrate import alembic_config

    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = alembic_config(url)
    if revision == "heads":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def cpu_line(label: str, runs: list[tuple[float, float | None]]) -> str:
    """Per round: Python CPU + its backends' CPU, seconds."""
    each = ", ".join(
        f"{py:.1f} + {'n/a' if server is None else f'{server:.1f}'}" for py, server in runs
    )
    return f"{label} CPU per pass, Python + PostgreSQL backends (s): {each}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--orders-per-client", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--url", help="an existing generated database (skips generation)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--name", help="the generated database's name (default: a random one)")
    parser.add_argument("--rounds", type=int, default=3, help="anchor/planner rounds")
    parser.add_argument(
        "--before", type=Path, default=None, help="source tree of earlier code, run alternately"
    )
    parser.add_argument(
        "--before-revision",
        help="the code before runs on this revision's schema (e.g. outreach_0004)",
    )
    parser.add_argument("--pass-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pass_only:  # the child of --before: one pass over --url, its figures as JSON
        created, seconds, python_s, server_s = asyncio.run(plan(args.url, args.batch))
        print(
            json.dumps(
                {
                    "created": created,
                    "seconds": seconds,
                    "python_s": python_s,
                    "server_s": server_s,
                }
            )
        )
        return
    from bench_common import (
        Comparison,
        LoadWatch,
        Pair,
        alternate_many,
        drop_database,
        fresh_database,
        report_first,
    )

    load = LoadWatch()
    url = args.url or fresh_database("postgres", Path(tempfile.gettempdir()), args.name)
    try:
        lines = []
        if not args.url:
            orders, took = asyncio.run(generate(url, args.clients, args.orders_per_client))
            lines.append(f"generated {args.clients:,} clients / {orders:,} orders in {took:.0f} s")
            print(lines[-1], file=sys.stderr, flush=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        created: list[int] = []
        cpu: dict[str, list[tuple[float, float | None]]] = {"subject": [], "before": []}
        created_before: list[int] = []

        def subject() -> float:
            asyncio.run(reset(url))
            count, elapsed, python_s, server_s = asyncio.run(plan(url, args.batch))
            created.append(count)
            cpu["subject"].append((python_s, server_s))
            return elapsed

        def before(source: Path) -> float:
            asyncio.run(reset(url))
            if args.before_revision:
                migrate(url, args.before_revision)
            try:
                count, elapsed, python_s, server_s = plan_before(source, url, args.batch)
            finally:
                if args.before_revision:
                    migrate(url, "heads")
            created_before.append(count)
            cpu["before"].append((python_s, server_s))
            return elapsed

        subjects: dict[str, Callable[[], float]] = {"subject": subject}
        if args.before is not None:
            subjects["before"] = lambda: before(args.before)
        runs = alternate_many(lambda: asyncio.run(floor(url)), subjects, args.rounds, load)
        pairs = runs["subject"]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        comparison = Comparison("planning pass", "GROUP BY floor", pairs, goal="<= 3x")
        beside = []
        if args.before is not None:
            beside = [
                Comparison("planning pass, code before", "GROUP BY floor", runs["before"]),
                Comparison(
                    "planning pass",
                    "the code before",
                    tuple(
                        Pair(b.subject_s, a.subject_s)
                        for a, b in zip(pairs, runs["before"], strict=True)
                    ),
                ),
            ]
        elapsed = statistics.median(p.subject_s for p in pairs)
        lines.append(
            f"planning pass: {elapsed:.1f} s, {created[-1]:,} attempts planned, "
            f"peak RSS {rss:.0f} MB (before planning {rss_before:.0f} MB), batch {args.batch:,}"
            f" (median of {len(pairs)} rounds; every round from an empty queue)"
        )
        lines.append(cpu_line("this code's", cpu["subject"]))
        if args.before is not None:
            lines.append(
                cpu_line(f"code before's ({created_before[-1]:,} attempts)", cpu["before"])
            )
        report_first([comparison, *beside], load, lines)
    finally:
        if args.keep or args.url:
            print(f"database kept: {url}")
        else:
            drop_database(url)


if __name__ == "__main__":
    main()
