"""Scaling a demo base up to millions of rows on PostgreSQL, fast enough to run on a laptop.

The demo generator makes ~700 clients/s in Python (with their orders, events and answers), so a
million clients would take most of an hour. Here the generator writes a base of B clients by
COPY (``crm_sync.demo.load``), and the rest are copies of that base made in set-based SQL:
copy k of every row gets its ids shifted by k times the base's span and its unique texts
(external ids, dedup keys) a ``-k`` suffix, so every copy is a valid business of its own with
the same shape as the base. Answers are then copied 2, 4, ... years back until the store holds
the asked number (the demo's survey rate gives ~0.4 answers a client), and one follow-up task is
written per detractor answer (one in ten still open), as the bot's and the follow-ups' tasks
would be.

During the copies the tables' secondary indexes are dropped and built again afterwards (one
sorted build instead of millions of inserts into each index), and foreign-key triggers are
off (``session_replication_role = replica``: the copies point to rows copied before them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

TABLES = ("clients", "client_phones", "consents", "orders", "events", "nps_responses", "tasks",
          "client_stats")  # fmt: skip

# copy k of each table (str.format, integers only): k the copy; c, o, n, e, p the spans of the
# client, order, answer, event and phone ids (the base is read by its primary key: a scan of
# the whole table would grow with every copy)
COPIES: dict[str, str] = {
    "clients": (
        "INSERT INTO clients (id, external_id, name, email, timezone, preferred_channel, "
        "manager, telegram_chat_id, telegram_reachable, created_at, updated_at) "
        "SELECT id + {k} * {c}, external_id || '-' || {k}, name, email, timezone, "
        "preferred_channel, manager, telegram_chat_id + {k} * {c}, telegram_reachable, "
        "created_at, updated_at FROM clients WHERE id <= {c}"
    ),
    "client_phones": (
        "INSERT INTO client_phones (client_id, phone, position) "
        "SELECT client_id + {k} * {c}, phone, position FROM client_phones WHERE id <= {p}"
    ),
    "consents": (
        "INSERT INTO consents (client_id, channel, kind, granted, source, at) "
        "SELECT client_id + {k} * {c}, channel, kind, granted, source, at FROM consents "
        "WHERE client_id <= {c}"
    ),
    "orders": (
        "INSERT INTO orders (id, external_id, client_id, placed_at, delivered_at, amount, "
        "currency, items, category, created_at, updated_at) "
        "SELECT id + {k} * {o}, external_id || '-' || {k}, client_id + {k} * {c}, placed_at, "
        "delivered_at, amount, currency, items, category, created_at, updated_at FROM orders "
        "WHERE id <= {o}"
    ),
    "events": (
        "INSERT INTO events (client_id, kind, at, summary, ref, data, dedup_key) "
        "SELECT client_id + {k} * {c}, kind, at, summary, ref, data, dedup_key || '-' || {k} "
        "FROM events WHERE id <= {e}"
    ),
    "nps_responses": (
        "INSERT INTO nps_responses (id, client_id, score, reason_text, reason_category, "
        "channel, source_kind, source_id, answered_at, dedup_key) "
        "SELECT id + {k} * {n}, client_id + {k} * {c}, score, reason_text, reason_category, "
        "channel, source_kind, source_id, answered_at, dedup_key || '-' || {k} "
        "FROM nps_responses WHERE id <= {n}"
    ),
    "client_stats": (
        "INSERT INTO client_stats (client_id, first_order_at, last_order_at, orders_count, "
        "revenue, last_nps_id, last_nps_score, last_nps_at) "
        "SELECT client_id + {k} * {c}, first_order_at, last_order_at, orders_count, revenue, "
        "last_nps_id + {k} * {n}, last_nps_score, last_nps_at FROM client_stats "
        "WHERE client_id <= {c}"
    ),
}
# the answers of every client again, ``years`` earlier (no event: the card's timeline shows
# the client's recent ones), at most ``limit`` of them
BACKDATED_ANSWERS = (
    "INSERT INTO nps_responses (id, client_id, score, reason_text, reason_category, channel, "
    "source_kind, source_id, answered_at, dedup_key) "
    "SELECT id + {shift}, client_id, score, reason_text, reason_category, channel, source_kind, "
    "source_id, answered_at - make_interval(years => {years}), dedup_key || '-y' || {years} "
    "FROM nps_responses WHERE id <= {n_all} ORDER BY id LIMIT {limit}"
)
TASKS = (
    "INSERT INTO tasks (client_id, kind, title, due_at, status, source_ref, dedup_key, "
    "created_at, updated_at) "
    "SELECT client_id, 'nps_detractor', 'Критик NPS: оценка ' || score, "
    "answered_at + interval '1 day', CASE WHEN id % 10 = 0 THEN 'open' ELSE 'done' END, "
    "'nps:' || id, 'bench:nps-task:' || id, answered_at, answered_at "
    "FROM nps_responses WHERE score <= 6"
)


async def _scalar(conn: AsyncConnection, sql: str, **params: Any) -> int:
    return int(await conn.scalar(text(sql), params) or 0)


async def _secondary_indexes(conn: AsyncConnection) -> tuple[list[str], list[str]]:
    """(statements that drop, statements that build again) every index and unique constraint
    of the tables except their primary keys."""
    drop: list[str] = []
    build: list[str] = []
    names = ", ".join(f"'{t}'" for t in TABLES)
    constraints = await conn.execute(
        text(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c WHERE c.contype = 'u' "
            f"AND c.conrelid::regclass::text IN ({names})"
        )
    )
    owned = set()
    for table, name, definition in constraints:
        owned.add(name)
        drop.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        build.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    indexes = await conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            f"WHERE i.schemaname = 'public' AND i.tablename IN ({names}) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
            "AND c.contype = 'p')"
        )
    )
    for name, definition in indexes:
        if name not in owned:
            drop.append(f'DROP INDEX "{name}"')
            build.append(definition)
    return drop, build


async def scale_up(
    engine: AsyncEngine, clients: int, answers: int, say: Callable[[str], None] = print
) -> dict[str, int]:
    """Copy the loaded base until the store holds ``clients`` clients (a whole number of
    copies, rounded up) and at least ``answers`` answers; then tasks, indexes, statistics."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        base = await _scalar(conn, "SELECT count(*) FROM clients")
        c = await _scalar(conn, "SELECT max(id) FROM clients")
        o = await _scalar(conn, "SELECT coalesce(max(id), 0) FROM orders")
        n = await _scalar(conn, "SELECT coalesce(max(id), 0) FROM nps_responses")
        e = await _scalar(conn, "SELECT coalesce(max(id), 0) FROM events")
        p = await _scalar(conn, "SELECT coalesce(max(id), 0) FROM client_phones")
        if base == 0 or base != c:
            raise ValueError("scale_up needs a freshly loaded base with client ids 1..N")
        copies = -(-clients // base)
        await conn.execute(text("SET session_replication_role = replica"))
        await conn.execute(text("SET maintenance_work_mem = '256MB'"))
        drop, build = await _secondary_indexes(conn)
        for statement in drop:
            await conn.exec_driver_sql(statement)
        for k in range(1, copies):
            started = time.perf_counter()
            for sql in COPIES.values():
                await conn.exec_driver_sql(sql.format(k=k, c=c, o=o, n=n, e=e, p=p))
            took = time.perf_counter() - started
            say(f"copy {k}/{copies - 1} of {base} clients in {took:.0f} s")
        n_all = n * copies
        years = 2
        while (have := await _scalar(conn, "SELECT count(*) FROM nps_responses")) < answers:
            shift, limit = n_all * years // 2, answers - have
            sql = BACKDATED_ANSWERS.format(shift=shift, years=years, n_all=n_all, limit=limit)
            await conn.exec_driver_sql(sql)
            say(f"answers copied {years} years back: {answers - have} at most")
            years += 2
        await conn.exec_driver_sql(TASKS)
        started = time.perf_counter()
        for statement in build:
            await conn.exec_driver_sql(statement)
        say(f"{len(build)} indexes and unique constraints built in "
            f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        for table in ("clients", "orders", "nps_responses", "tasks", "events", "client_phones"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            )
        await conn.execute(text("RESET session_replication_role"))
        await conn.execute(text(f"VACUUM ANALYZE {', '.join(TABLES)}"))
        counts = {}
        for table in ("clients", "orders", "nps_responses", "events", "tasks"):
            counts[table] = await _scalar(conn, f"SELECT count(*) FROM {table}")
    return counts
