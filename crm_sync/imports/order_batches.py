"""Set-based writes of one batch of imported orders through a staging temp table.

The batch (distinct order ids: a repeated id waits for the next batch, see ``run.py``) is loaded
into ``import_orders`` (on PostgreSQL COPY into ``import_orders_in``, its moments and amounts as
text the resolving statement casts; executemany on SQLite), then a few statements do the rest
in the database: resolve clients, compare with the stored order (IS DISTINCT FROM: only given
fields count, so an import never erases stored data), UPDATE what changed, INSERT what is new,
refresh ``client_stats`` of the clients touched (both sides of a moved order) and count the
outcomes. No stored order is loaded into Python. The timeline reads orders from ``orders``
(``crm_sync.history.order_events``): no event row per order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import column, text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.client_stats import refresh_client_stats
from crm_sync.imports.order_rows import StagedOrder, sqlite_time
from crm_sync.imports.upsert import BatchResult, WriteRefused

STAGING = "import_orders"
_COLUMNS = (
    "row_no", "external_id", "client_ext", "placed_at", "delivered_at", "amount", "currency",
    "category", "items",
)  # fmt: skip
RAW = "import_orders_in"  # the batch as loaded; resolved into STAGING by one join
_RESOLVED = ("client_id", "order_id", "old_client_id", "changed")
_TYPED = (  # RAW's rows with their moments and amounts as the values they stand for
    "SELECT row_no, external_id, client_ext, placed_at::timestamp AT TIME ZONE 'UTC' AS placed_at,"
    " delivered_at::timestamp AT TIME ZONE 'UTC' AS delivered_at,"
    f" amount::numeric(14, 2) AS amount, currency, category, items FROM {RAW}"
)
_CREATE = {
    "postgresql": [
        # moments (naive UTC) and amounts as text: see ``order_rows``
        f"""CREATE TEMP TABLE IF NOT EXISTS {RAW} (
        row_no integer NOT NULL, external_id varchar(128) NOT NULL, client_ext varchar(128),
        placed_at text NOT NULL, delivered_at text, amount text,
        currency varchar(3), category varchar(128), items json)""",
        f"""CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
        row_no integer NOT NULL, external_id varchar(128) NOT NULL, client_ext varchar(128),
        placed_at timestamptz NOT NULL, delivered_at timestamptz, amount numeric(14, 2),
        currency varchar(3), category varchar(128), items json, client_id bigint,
        order_id bigint, old_client_id bigint, changed boolean)""",
    ],
    # Same affinities as ``orders`` (NUMERIC amount), so stored and staged values compare.
    "sqlite": [
        f"""CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
        row_no INTEGER NOT NULL, external_id TEXT NOT NULL, client_ext TEXT,
        placed_at DATETIME NOT NULL, delivered_at DATETIME, amount NUMERIC(14, 2),
        currency VARCHAR(3), category TEXT, items JSON, client_id INTEGER, order_id INTEGER,
        old_client_id INTEGER, changed INTEGER)""",
    ],
}
# SQLite loads a batch straight into STAGING and resolves it there (see _statements).
_TABLES = {"postgresql": (RAW, STAGING), "sqlite": (STAGING,)}


_PLAN_SETTINGS = (  # this transaction only
    "SELECT set_config('enable_hashjoin', 'off', true), "
    "set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)"
)


def _statements(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    ne = "IS DISTINCT FROM" if pg else "IS NOT"
    true, false = ("true", "false") if pg else ("1", "0")
    items_ne = (
        "o.items::jsonb IS DISTINCT FROM t.items::jsonb"
        if pg
        else "json(o.items) IS NOT json(t.items)"
    )
    s = STAGING
    changed = (  # the resolved client is {client}
        f"o.client_id {ne} {{client}} OR o.placed_at {ne} t.placed_at OR o.amount {ne} t.amount"
        f" OR (t.delivered_at IS NOT NULL AND o.delivered_at {ne} t.delivered_at)"
        f" OR (t.currency IS NOT NULL AND o.currency {ne} t.currency)"
        f" OR (t.category IS NOT NULL AND o.category {ne} t.category)"
        f" OR (t.items IS NOT NULL AND {items_ne})"
    )
    rest = _rest(s, true)
    if not pg:  # SQLite: the batch is loaded into STAGING and resolved in place. With the one
        # INSERT ... SELECT from a second temp table an import of 1.15M orders took 1.16-1.91
        # times as long as with these two UPDATEs (alternated rounds on a loaded machine).
        return [
            f"UPDATE {s} AS t SET client_id = c.id "
            "FROM clients c WHERE c.external_id = t.client_ext",
            f"UPDATE {s} AS t SET order_id = o.id, old_client_id = o.client_id, "
            f"changed = CASE WHEN {changed.format(client='t.client_id')} "
            f"THEN {true} ELSE {false} END "
            "FROM orders o WHERE o.external_id = t.external_id AND t.client_id IS NOT NULL",
            *rest,
        ]
    return [
        # One pass resolves every row: its client (by code) and, for a known client, the
        # stored order of the same number and whether the row changes it.
        f"INSERT INTO {s} ({', '.join(_COLUMNS + _RESOLVED)}) "
        f"SELECT {', '.join('t.' + c for c in _COLUMNS)}, c.id, o.id, o.client_id, "
        f"CASE WHEN o.id IS NULL THEN NULL WHEN {changed.format(client='c.id')} "
        f"THEN {true} ELSE {false} END "
        f"FROM ({_TYPED}) t LEFT JOIN clients c ON c.external_id = t.client_ext "
        "LEFT JOIN orders o ON o.external_id = t.external_id AND c.id IS NOT NULL",
        *rest,
    ]


def _rest(s: str, true: str) -> list[str]:
    return [
        "UPDATE orders SET client_id = t.client_id, placed_at = t.placed_at, amount = t.amount, "
        "delivered_at = COALESCE(t.delivered_at, orders.delivered_at), "
        "currency = COALESCE(t.currency, orders.currency), "
        "category = COALESCE(t.category, orders.category), "
        "items = COALESCE(t.items, orders.items), updated_at = :now "
        f"FROM {s} t WHERE t.changed = {true} AND orders.id = t.order_id",
        "INSERT INTO orders (external_id, client_id, placed_at, delivered_at, amount, currency, "
        "category, items, created_at, updated_at) "
        "SELECT t.external_id, t.client_id, t.placed_at, t.delivered_at, t.amount, "
        "COALESCE(t.currency, :currency), t.category, t.items, :now, :now "
        f"FROM {s} t WHERE t.client_id IS NOT NULL AND t.order_id IS NULL ORDER BY t.row_no",
    ]


async def prepare_staging(conn: AsyncConnection) -> None:
    """Create the staging table on this connection (once per import run)."""
    for statement in _CREATE[conn.dialect.name]:
        await conn.exec_driver_sql(statement)


async def drop_staging(conn: AsyncConnection) -> None:
    for table in _TABLES[conn.dialect.name]:
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


async def write_orders(
    conn: AsyncConnection,
    rows: list[StagedOrder],
    *,
    default_currency: str,
    now: datetime,
    analyze: bool = True,
    loaded: Callable[[], None] | None = None,
) -> BatchResult:
    """One batch in the caller's transaction; rows from ``OrderRows`` (distinct ids).

    ``analyze``: refresh the staging table's statistics (PostgreSQL; the first batch of a run).
    ``loaded``: called once the rows are in the staging table, before the statements that
    merge them (the import starts parsing its next batch there, see ``run.py``).
    """
    result = BatchResult()
    if not rows:
        return result
    dialect = conn.dialect.name
    # Also opens the transaction on asyncpg, so that COPY below is part of it.
    empty = "TRUNCATE" if dialect == "postgresql" else "DELETE FROM"  # temp: no autovacuum
    for table in _TABLES[dialect]:
        await conn.exec_driver_sql(f"{empty} {table}")
    if dialect == "postgresql":
        import asyncpg

        # A batch joins a few thousand rows to tables of millions by their unique indexes:
        # with hash joins the planner scans the whole of orders for each batch (and its row
        # estimate lags behind a growing table), and JIT compiles plans that run once.
        await conn.exec_driver_sql(_PLAN_SETTINGS)

        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            await driver.copy_records_to_table(RAW, records=rows, columns=list(_COLUMNS))
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as err:
            raise WriteRefused(type(err).__name__) from err
        if analyze:  # statistics once: the planner scales them to the table's current size
            await conn.exec_driver_sql(f"ANALYZE {RAW}")  # joins by index, not a scan
        stamp: Any = now
    else:
        marks = ", ".join("?" for _ in _COLUMNS)
        await conn.exec_driver_sql(
            f"INSERT INTO {STAGING} ({', '.join(_COLUMNS)}) VALUES ({marks})", rows
        )
        stamp = sqlite_time(now)
    if loaded is not None:
        loaded()
    params = {"now": stamp, "currency": default_currency}
    for number, statement in enumerate(_statements(dialect)):
        await conn.execute(text(statement), params)
        if number == 0 and analyze and dialect == "postgresql":
            await conn.exec_driver_sql(f"ANALYZE {STAGING}")  # the resolved rows, likewise
    s = STAGING
    true = "true" if dialect == "postgresql" else "1"
    counts = await conn.execute(
        text(f"SELECT count(client_id), count(order_id), "
             f"coalesce(sum(CASE WHEN changed = {true} THEN 1 ELSE 0 END), 0), "
             f"coalesce(sum(CASE WHEN changed = {true} AND old_client_id <> client_id "
             f"THEN 1 ELSE 0 END), 0) FROM {s}")
    )  # fmt: skip
    known, existing, updated, moved = counts.one()
    result.counts.update(created=known - existing, updated=updated, unchanged=existing - updated)
    if known > existing or updated:
        touched = text(
            f"SELECT client_id FROM {s} WHERE client_id IS NOT NULL "
            f"AND (order_id IS NULL OR changed = {true}) "
            f"UNION SELECT old_client_id FROM {s} WHERE changed = {true}"
        ).columns(column("client_id"))
        # Only a moved order can leave a client without orders (an import removes none).
        await refresh_client_stats(conn, touched, emptied=moved > 0)
    if known < len(rows):
        unknown = await conn.execute(
            text(f"SELECT row_no, client_ext FROM {s} WHERE client_id IS NULL ORDER BY row_no")
        )
        for row_no, client_ext in unknown:
            result.rejects.append(
                (row_no, f"клиент {client_ext!r} не найден: сначала импорт клиентов")
            )
    return result
