"""Executemany at driver level: one compiled statement, rows as plain tuples.

SQLAlchemy's per-value bind processing costs ~20 us a row; an import of a million orders spends
more time there than in the database. Here values are converted once, by type, to what the
driver stores (the same representation UtcDateTime, Numeric and JSON produce), and the batch goes
to ``cursor.executemany`` (sqlite3) or asyncpg's pipelined ``executemany``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _pg_datetime(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    return value


Converter = Callable[[Any], Any] | None

_SQLITE: dict[type, Converter] = {
    datetime: _sqlite_datetime,
    bool: int,
    Decimal: str,
    dict: _json,
    list: _json,
}
_PG: dict[type, Converter] = {datetime: _pg_datetime, dict: _json, list: _json}


def _converters(
    dialect: str, order: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[Converter]:
    """Per column, the conversion of its first non-null value's type (columns are uniform)."""
    table = _PG if dialect == "postgresql" else _SQLITE
    found: list[Converter] = []
    for name in order:
        sample = next((row[name] for row in rows if row[name] is not None), None)
        found.append(table.get(type(sample)))
    return found


async def execute_many(
    conn: AsyncConnection, stmt: Insert, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run an INSERT (with its ON CONFLICT clause) for every row, values given by column."""
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
    order = compiled.positiontup or []
    plan = list(zip(order, _converters(conn.dialect.name, order, rows), strict=True))
    params = [
        tuple(
            value if convert is None or value is None else convert(value)
            for name, convert in plan
            for value in (row[name],)
        )
        for row in rows
    ]
    await conn.exec_driver_sql(str(compiled), params)
