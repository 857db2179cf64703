"""A page deep in a list reads about a page of rows, not every row before it.

The dashboard's lists are keyset pages ("Дальше →"). Each statement the store runs for a deep
page is captured as sent and run again under ``EXPLAIN ANALYZE`` on PostgreSQL, whose plan says
how many rows each step read and threw away: a condition the index cannot seek by (an OR of the
time and the id) read every newer row and filtered it out."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import TaskStatus
from povtor.ports import ClientFilter, NpsCursor, NpsQuery

pytestmark = pytest.mark.postgres
ROWS = 3000
PAGE = 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(engine: AsyncEngine) -> None:
    t0 = f"TIMESTAMPTZ '{T0.isoformat()}'"
    rows = f"generate_series(1, {ROWS}) AS n"
    async with engine.begin() as conn:
        for statement in (
            "INSERT INTO clients (id, external_id, name, timezone, telegram_reachable, "
            "created_at, updated_at) SELECT n, 'C' || n, 'Клиент ' || n, 'Europe/Moscow', true, "
            f"now(), now() FROM {rows}",
            "INSERT INTO client_stats (client_id, orders_count, revenue, last_order_at, "
            f"first_order_at) SELECT n, 1 + n % 3, 100 * n, {t0} - n * interval '1 hour', "
            f"{t0} - n * interval '2 hours' FROM {rows}",
            "INSERT INTO nps_responses (id, client_id, score, channel, answered_at, dedup_key) "
            f"SELECT n, n, n % 11, 'telegram', {t0} - n * interval '1 minute', 'nps:' || n "
            f"FROM {rows}",
            "INSERT INTO tasks (id, client_id, kind, title, due_at, status, dedup_key, "
            "created_at, updated_at) SELECT n, n, 'callback', 'Задача ' || n, "
            f"{t0} + n * interval '1 minute', 'open', 'task:' || n, now(), now() FROM {rows}",
        ):
            await conn.execute(text(statement))
        for table in ("clients", "client_stats", "nps_responses", "tasks"):
            await conn.execute(text(f"ANALYZE {table}"))


async def _rows_read(engine: AsyncEngine, read: Callable[[], Awaitable[Any]]) -> int:
    """Rows the statements of ``read`` took from their tables (and threw away), as PostgreSQL
    counts them running those statements again."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await read()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert sent
    total = 0
    async with engine.connect() as conn:
        for statement, params in sent:
            result = await conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params
            )
            plan = result.scalar_one()
            total += _scanned(json.loads(plan) if isinstance(plan, str) else plan)
    return total


def _scanned(node: Any) -> int:
    if isinstance(node, list):
        return sum(_scanned(n) for n in node)
    if not isinstance(node, dict):
        return 0
    own = 0
    if "Relation Name" in node:  # a scan: the rows it gave and the rows it filtered out
        loops = int(node.get("Actual Loops", 1))
        own = (
            int(node.get("Actual Rows", 0)) + int(node.get("Rows Removed by Filter", 0))
        ) * loops
    return own + sum(_scanned(v) for v in node.values() if isinstance(v, list | dict))


async def test_a_deep_page_of_each_list_reads_about_a_page(
    db_url: str, engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("the plan's row counts are PostgreSQL's")
    await _fill(engine)
    view = SqlRetentionView(engine, store)
    deep = ROWS * 3 // 4

    async def answers() -> None:
        cursor = NpsCursor(T0 - timedelta(minutes=deep), deep)
        rows, _ = await store.list_nps_answers_named(NpsQuery(), before=cursor, limit=PAGE)
        assert [r.id for r in rows][:1] == [deep + 1]

    async def tasks() -> None:
        after = (T0 + timedelta(minutes=deep), deep)
        rows, _ = await store.list_tasks_named(status=TaskStatus.OPEN, after=after, limit=PAGE)
        assert [r.id for r in rows][:1] == [deep + 1]

    async def clients() -> None:
        rows = await view.list_clients(ClientFilter(as_of=T0), after_id=deep, limit=PAGE)
        assert [r.id for r in rows][:1] == [deep + 1]

    for read in (answers, tasks, clients):
        # a page and its joins (names, stats) with some slack; the whole list is 3,000 rows
        assert await _rows_read(engine, read) <= 4 * PAGE, read.__name__
