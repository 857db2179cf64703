"""Set-based writes of one batch of imported clients: a few statements per batch, never per row.

Every batch is folded in file order against what the database holds, so each row gets exactly one
outcome (created / updated / unchanged), a later duplicate of an id in the same file updates the
earlier one ("last row wins"), and only rows that change anything are written, with
INSERT ... ON CONFLICT (external_id) DO UPDATE on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, delete, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.tables import ClientPhoneRow, ClientRow
from crm_sync.imports.bulk import execute_many
from crm_sync.imports.records import ClientRecord
from povtor.db import dialect_insert, table_of

log = logging.getLogger(__name__)
T = TypeVar("T")

CLIENT_FIELDS = ("name", "email", "timezone", "manager", "preferred_channel", "phones")

clients = table_of(ClientRow)
phones_t = table_of(ClientPhoneRow)


class WriteRefused(Exception):
    """The database refused the rows' values outside SQLAlchemy (asyncpg's COPY)."""


def db_error_kind(err: BaseException) -> str:
    """The database error's class and SQLSTATE: never the statement or the values in it."""
    cause: BaseException = err
    if isinstance(err, DBAPIError) and err.orig is not None:
        cause = err.orig.__cause__ or err.orig
    elif isinstance(err, WriteRefused) and err.__cause__ is not None:
        cause = err.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return type(cause).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def refused_reason(err: BaseException) -> str:
    return f"база данных не приняла строку: {db_error_kind(err)}"


@dataclass
class BatchResult:
    counts: Counter[str] = field(default_factory=Counter)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (row, reason)


async def write_isolated(
    conn: AsyncConnection,
    items: list[T],
    write: Callable[[list[T]], Awaitable[BatchResult]],
    row_of: Callable[[T], int],
) -> BatchResult:
    """``write(items)`` in a savepoint; if the database refuses the values, halve until the
    refused rows are alone: those are rejected with the database's reason, the rest is written
    (in file order). A database that fails for another reason (gone, full) raises."""
    try:
        async with conn.begin_nested():
            return await write(items)
    except (DataError, IntegrityError, WriteRefused) as err:
        if len(items) == 1:
            return BatchResult(rejects=[(row_of(items[0]), refused_reason(err))])
        log.warning("the database refused a batch of %d rows: %s", len(items), db_error_kind(err))
    middle = len(items) // 2
    first = await write_isolated(conn, items[:middle], write, row_of)
    second = await write_isolated(conn, items[middle:], write, row_of)
    first.counts.update(second.counts)
    first.rejects.extend(second.rejects)
    return first


def insert_for(conn: AsyncConnection) -> Callable[[Table], Any]:
    """The dialect's INSERT, which has ``on_conflict_do_update/nothing``."""
    return functools.partial(dialect_insert, conn)


async def _ids(conn: AsyncConnection, table: Table, external_ids: list[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(table.c.external_id, table.c.id).where(table.c.external_id.in_(external_ids))
    )
    return dict(rows.tuples().all())


def _fold(
    records: Sequence[Any],
    state: dict[str, dict[str, Any]],
    merge: Callable[[dict[str, Any] | None, Any], dict[str, Any]],
    result: BatchResult,
) -> dict[str, dict[str, Any]]:
    """Apply rows in order to ``state``; returns the final values of every changed id."""
    changed: dict[str, dict[str, Any]] = {}
    for record in records:
        old = state.get(record.external_id)
        new = merge(old, record)
        if old is None:
            result.counts["created"] += 1
        elif new == old:
            result.counts["unchanged"] += 1
            continue
        else:
            result.counts["updated"] += 1
        state[record.external_id] = new
        changed[record.external_id] = new
    return changed


async def _known_by_phone(
    conn: AsyncConnection, records: Sequence[ClientRecord]
) -> list[ClientRecord]:
    """Rows of a file without client codes: a stored client with one of the row's phones is
    that client (the oldest one if several); otherwise the first phone becomes the code."""
    wanted = list({p for r in records if r.by_phone for p in r.phones or ()})
    rows = await conn.execute(
        select(phones_t.c.phone, clients.c.external_id)
        .join(clients, clients.c.id == phones_t.c.client_id)
        .where(phones_t.c.phone.in_(wanted))
        .order_by(clients.c.id.desc())
    )
    owner = dict(rows.tuples().all())  # the oldest client wins: its row comes last
    resolved = []
    for record in records:
        found = next((owner[p] for p in record.phones or () if p in owner), None)
        if record.by_phone and found is not None and found != record.external_id:
            record = replace(record, external_id=found)
        resolved.append(record)
    return resolved


async def upsert_clients(
    conn: AsyncConnection,
    records: Sequence[ClientRecord],
    *,
    default_timezone: str,
    now: datetime,
) -> BatchResult:
    result = BatchResult()
    if any(r.by_phone for r in records):
        records = await _known_by_phone(conn, records)
    ids = list(dict.fromkeys(r.external_id for r in records))
    c = clients.c
    rows = await conn.execute(
        select(c.id, c.external_id, *(c[f] for f in CLIENT_FIELDS if f != "phones")).where(
            c.external_id.in_(ids)
        )
    )
    state: dict[str, dict[str, Any]] = {}
    db_ids: dict[int, str] = {}
    for row in rows.mappings():
        values = {f: row[f] for f in CLIENT_FIELDS if f != "phones"}
        state[row["external_id"]] = {**values, "phones": ()}
        db_ids[row["id"]] = row["external_id"]
    if db_ids:
        p = phones_t.c
        stored = await conn.execute(
            select(p.client_id, p.phone)
            .where(p.client_id.in_(list(db_ids)))
            .order_by(p.client_id, p.position, p.id)
        )
        for client_id, phone in stored:
            ext = db_ids[client_id]
            state[ext]["phones"] = (*state[ext]["phones"], phone)
    stored_phones = {ext: values["phones"] for ext, values in state.items()}

    def merge(old: dict[str, Any] | None, rec: ClientRecord) -> dict[str, Any]:
        base = old or {
            "name": "",
            "email": None,
            "timezone": default_timezone,
            "manager": None,
            "preferred_channel": None,
            "phones": (),
        }
        given = {f: getattr(rec, f) for f in CLIENT_FIELDS if getattr(rec, f) is not None}
        return {**base, **given}

    changed = _fold(records, state, merge, result)
    if not changed:
        return result
    insert = insert_for(conn)(clients)
    stmt = insert.on_conflict_do_update(
        index_elements=[c.external_id],
        set_={
            **{f: insert.excluded[f] for f in CLIENT_FIELDS if f != "phones"},
            "updated_at": insert.excluded.updated_at,
        },
    )
    payload = [
        {
            "external_id": ext,
            **{f: v for f, v in values.items() if f != "phones"},
            "telegram_reachable": True,
            "created_at": now,
            "updated_at": now,
        }
        for ext, values in changed.items()
    ]
    await execute_many(conn, stmt, list(payload[0]), payload)
    id_of = await _ids(conn, clients, list(changed))
    phones_changed = [
        ext for ext, values in changed.items() if values["phones"] != stored_phones.get(ext, ())
    ]
    if phones_changed:
        stale = [id_of[ext] for ext in phones_changed if ext in stored_phones]
        if stale:
            await conn.execute(delete(phones_t).where(phones_t.c.client_id.in_(stale)))
        new_phones = [
            {"client_id": id_of[ext], "phone": phone, "position": pos}
            for ext in phones_changed
            for pos, phone in enumerate(changed[ext]["phones"])
        ]
        await execute_many(conn, phones_t.insert(), ["client_id", "phone", "position"], new_phones)
    return result
