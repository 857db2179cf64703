"""The order cycles the PostgreSQL planner computes in NumPy are PostgreSQL's own floats: per
client and category, and per client, the order count, the last order, the median gap
(``percentile_cont(0.5)`` over ``LAG`` gaps of ``date_part('epoch', ...)``) and the days since
(``date_part('epoch', as_of - last) / 86400.0``), equal to the bit, on random histories with
ties, NULL and empty categories, one-order groups and gaps of whole days; per client the last
delivery (``MAX(delivered_at)``, orders without one left out); and the reorder pick
and the win-back silence select what the SQL's ``ROW_NUMBER`` and conditions select."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history import order_cycles
from crm_sync.history.planning_source import (
    KNOWN_ARRAYS_SQL,
    ORDERS_ARRAYS_SQL,
    PAGE_SETTINGS,
    binary_array,
)
from povtor.db import UtcDateTime, create_engine
from tests.conftest import run_blocking, truncate_all

pytestmark = pytest.mark.postgres
AS_OF = datetime(2026, 12, 14, 5, 30, 0, 123456, tzinfo=UTC)
CATEGORIES = ["кофе", "чай", "Tea", "", None]
PARAMS = {"fallback": 30.0, "min_cycle": 7.0}


@pytest.fixture
async def pg(pg_database_url: str) -> AsyncIterator[AsyncEngine]:
    run_blocking(truncate_all(pg_database_url))
    engine = create_engine(pg_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _load(engine: AsyncEngine, rng: random.Random, clients: int) -> None:
    orders: list[dict[str, Any]] = []
    for c in range(1, clients + 1):
        base = AS_OF - timedelta(days=rng.choice([0, 10, 45, 200, 800]))
        for k in range(rng.randint(1, 12)):
            if rng.random() < 0.3:  # whole days back from the moment: exact boundaries
                at = AS_OF - timedelta(days=rng.randint(0, 400))
            elif rng.random() < 0.1 and orders and orders[-1]["c"] == c:  # a tie
                at = orders[-1]["at"]
            else:
                at = base - timedelta(microseconds=rng.randint(0, 10**6 * 86400 * 300))
            if rng.random() < 0.02:  # far from now: the epoch's float has fewer fractions
                at = datetime(2105, 6, 1, tzinfo=UTC) - timedelta(
                    microseconds=rng.randint(0, 10**12)
                )
            delivered = (
                None
                if rng.random() < 0.3
                else at + timedelta(microseconds=rng.randint(0, 10**6 * 86400 * 20))
            )
            orders.append(
                {
                    "c": c,
                    "ext": f"{c}-{k}",
                    "cat": rng.choice(CATEGORIES),
                    "at": at,
                    "delivered": delivered,
                }
            )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO clients (id, external_id, name, timezone, telegram_reachable,"
                " created_at, updated_at) SELECT g, 'C' || g, '', 'Europe/Moscow', true, now(),"
                " now() FROM generate_series(1, :n) AS g"
            ),
            {"n": clients},
        )
        await conn.execute(
            text(
                "INSERT INTO orders (external_id, client_id, placed_at, delivered_at, amount,"
                " currency, category, created_at, updated_at)"
                " VALUES (:ext, :c, :at, :delivered, 1, 'RUB', :cat, now(), now())"
            ).bindparams(
                bindparam("at", type_=UtcDateTime()), bindparam("delivered", type_=UtcDateTime())
            ),
            orders,
        )


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values])


def _us(values: list[datetime]) -> np.ndarray:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return np.array([(v - epoch) // timedelta(microseconds=1) for v in values])


def _reference(partition: str, order: str, keys: str = "") -> str:
    """The planning SQL's cycle statistics, as PostgreSQL computed them before the arrays."""
    return f"""
    WITH o AS (
        SELECT client_id, category, placed_at,
               (date_part('epoch', placed_at) - LAG(date_part('epoch', placed_at))
                OVER (PARTITION BY {partition} ORDER BY placed_at)) / 86400.0 AS gap
        FROM orders
    )
    SELECT {keys}MAX(placed_at) AS last_at, COUNT(*) AS orders,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median,
           date_part('epoch', CAST(:as_of AS TIMESTAMPTZ) - MAX(placed_at)) / 86400.0 AS since
    FROM o GROUP BY {partition} ORDER BY {order}"""


def _same(cycles: order_cycles.Cycles, rows: list[Any]) -> None:
    assert len(cycles.first) == len(rows)
    assert np.array_equal(cycles.orders, [r.orders for r in rows])
    assert np.array_equal(cycles.last_us, _us([r.last_at for r in rows]))
    assert np.array_equal(cycles.median, _floats([r.median for r in rows]), equal_nan=True)
    assert np.array_equal(cycles.since, _floats([r.since for r in rows]))  # bit for bit


async def test_the_arrays_give_postgresql_own_cycles_and_selections(pg: AsyncEngine) -> None:
    await _load(pg, random.Random(5), 400)
    as_of = {"as_of": AS_OF}
    async with pg.connect() as conn:
        page = {"after": 0, "upto": 400}
        got = (await conn.execute(text(ORDERS_ARRAYS_SQL), {**page, "known": []})).one()
        by_cat_rows = (
            await conn.execute(
                text(
                    _reference("client_id, category", "client_id, category NULLS FIRST")
                ).bindparams(bindparam("as_of", type_=UtcDateTime())),
                as_of,
            )
        ).all()
        by_client_rows = (
            await conn.execute(
                text(_reference("client_id", "client_id")).bindparams(
                    bindparam("as_of", type_=UtcDateTime())
                ),
                as_of,
            )
        ).all()
        epoch_rows = (
            await conn.execute(
                text(
                    "SELECT client_id, date_part('epoch', placed_at) AS placed,"
                    " COALESCE(date_part('epoch', delivered_at), '-Infinity') AS delivered"
                    " FROM orders ORDER BY client_id, placed_at, delivered_at NULLS FIRST"
                )
            )
        ).all()
        delivered_rows = (
            await conn.execute(
                text(
                    "SELECT client_id, MAX(delivered_at) AS last_at FROM orders"
                    " WHERE delivered_at IS NOT NULL GROUP BY client_id ORDER BY client_id"
                )
            )
        ).all()
        pick_rows = (
            await conn.execute(
                text(f"""
                WITH s AS ({_reference("client_id, category", "1", "client_id, category, ")}),
                c AS (SELECT client_id, category,
                             CASE WHEN median IS NULL THEN 30.0::float8
                                  ELSE GREATEST(median, 7.0::float8) END AS cycle, since
                      FROM s),
                due AS (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY client_id
                               ORDER BY (cycle - since), COALESCE(category, '')) AS pick
                        FROM c WHERE since >= cycle - 3 AND since < cycle + 14)
                SELECT client_id, category, cycle FROM due WHERE pick = 1 ORDER BY client_id
                """).bindparams(bindparam("as_of", type_=UtcDateTime())),
                as_of,
            )
        ).all()
    client = binary_array(got.client, "i8")
    epoch_s = order_cycles.epoch_seconds(binary_array(got.placed, "i8"))
    delivered_s = order_cycles.epoch_seconds(binary_array(got.delivered, "i8"))
    code = binary_array(got.code, "i4")
    # the stored times made date_part's floats in NumPy, bit for bit (no delivery: -Infinity)
    both = np.lexsort((delivered_s, epoch_s, client))
    assert np.array_equal(client[both], [r.client_id for r in epoch_rows])
    assert np.array_equal(epoch_s[both], _floats([r.placed for r in epoch_rows]))
    assert np.array_equal(delivered_s[both], _floats([r.delivered for r in epoch_rows]))
    assert np.isinf(delivered_s).any()
    assert {None, ""} <= set(got.categories)  # both kinds occur
    category = [got.categories[c - 1] for c in code]
    assert (code[1:] < code[:-1])[client[1:] == client[:-1]].any()  # by time, not category
    by_cat = order_cycles.by_category(client, code, epoch_s, AS_OF, **PARAMS)
    _same(by_cat, by_cat_rows)
    by_category_first = np.lexsort((epoch_s, code, client))  # the order the query once gave
    again = order_cycles.by_category(
        client[by_category_first],
        code[by_category_first],
        epoch_s[by_category_first],
        AS_OF,
        **PARAMS,
    )
    _same(again, by_cat_rows)
    by_client = order_cycles.by_client(client, epoch_s, AS_OF, **PARAMS)
    _same(by_client, by_client_rows)
    resorted = order_cycles.by_client(  # not in time order within a client: sorted again
        client[by_category_first], epoch_s[by_category_first], AS_OF, **PARAMS
    )
    _same(resorted, by_client_rows)
    assert (by_client.orders > 1).any()
    assert (by_client.orders == 1).any()

    delivered = order_cycles.latest(client, delivered_s)
    assert 0 < len(delivered_rows) < 400  # clients with and without a delivery
    assert delivered.client.tolist() == [r.client_id for r in delivered_rows]
    assert np.array_equal(delivered.last_us, _us([r.last_at for r in delivered_rows]))

    picks = order_cycles.soonest_due(by_cat, lead=3, grace=14)
    assert len(picks) > 20
    # NULL and '' tie in the SQL's order (both ''), so they are compared as ''
    assert [
        (int(by_cat.client[g]), category[by_cat.first[g]] or "", float(by_cat.cycle[g]))
        for g in picks
    ] == [(r.client_id, r.category or "", r.cycle) for r in pick_rows]
    quiet = order_cycles.silent(by_client, first=30, ceiling=730.0, factor=1.5)
    ok = [
        i
        for i, r in enumerate(by_client_rows)
        if 30 <= r.since < 730.0
        and (r.orders == 1 or r.since >= (30.0 if r.median is None else max(r.median, 7.0)) * 1.5)
    ]
    assert len(ok) > 20
    assert quiet.tolist() == ok


async def test_known_categories_give_the_same_arrays_or_say_one_is_missing(
    pg: AsyncEngine,
) -> None:
    await _load(pg, random.Random(7), 200)
    page = {"after": 0, "upto": 200}
    async with pg.connect() as conn:
        full = (await conn.execute(text(ORDERS_ARRAYS_SQL), {**page, "known": []})).one()
        categories = list(full.categories)
        assert not full.unknown
        again = (await conn.execute(text(KNOWN_ARRAYS_SQL), {**page, "known": categories})).one()
        missing = [c for c in categories if c != "чай"]
        short = (await conn.execute(text(KNOWN_ARRAYS_SQL), {**page, "known": missing})).one()
        merged = (await conn.execute(text(ORDERS_ARRAYS_SQL), {**page, "known": ["Zz"]})).one()
    assert not again.unknown
    assert again.categories == categories
    assert (again.client, again.code, again.placed, again.delivered) == (
        full.client,
        full.code,
        full.placed,
        full.delivered,
    )
    assert short.unknown  # an order of "чай" has no code: the page is read with its own
    # the known categories join the page's own, in the database's order
    assert "Zz" in merged.categories
    assert [c for c in merged.categories if c != "Zz"] == categories


async def test_a_page_s_settings_hold_for_its_transaction_only(pg: AsyncEngine) -> None:
    async with pg.connect() as conn:
        async with conn.begin():
            await conn.execute(PAGE_SETTINGS)
            inside = [
                (await conn.execute(text(f"SHOW {name}"))).scalar_one()
                for name in ("work_mem", "jit", "enable_bitmapscan")
            ]
        after = (await conn.execute(text("SHOW enable_bitmapscan"))).scalar_one()
    assert inside == ["64MB", "off", "off"]
    assert after == "on"
