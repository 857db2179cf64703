"""The client summary keeps each client's last scored NPS answer, on SQLite and PostgreSQL:
recorded answers, orders written after them, answers of clients without orders, and the
migration's backfill of answers stored before it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate import upgrade
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from crm_sync.history.tables import ClientRow, ClientStatsRow, NpsResponseRow, OrderRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import import_file
from povtor.db import create_engine
from povtor.domain import ChannelKind
from povtor.ports import NewNpsResponse
from tests.conftest import _pg_admin, in_thread, run_blocking
from tests.integration.imports.conftest import write_csv
from tests.integration.schema import schema_drift

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _stats(engine: AsyncEngine, client_id: int) -> Any:
    cs = ClientStatsRow
    async with engine.connect() as conn:
        query = select(
            cs.orders_count, cs.last_order_at, cs.last_nps_id, cs.last_nps_score, cs.last_nps_at
        ).where(cs.client_id == client_id)
        return (await conn.execute(query)).one_or_none()


async def _answer(store: SqlHistoryStore, client_id: int, score: int | None, at: datetime) -> int:
    answer = NewNpsResponse(client_id, score, ChannelKind.CALL, answered_at=at)
    return (await store.record_nps(answer)).id


async def test_last_scored_answer_by_time_is_kept(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    client = await store.create_client(ClientInput("C1", name="Иван"))
    assert await _stats(engine, client.id) is None
    first = await _answer(store, client.id, 9, T0)
    row = await _stats(engine, client.id)
    assert (row.orders_count, row.last_order_at) == (0, None)  # answers, no orders yet
    assert (row.last_nps_id, row.last_nps_score, row.last_nps_at) == (first, 9, T0)
    latest = await _answer(store, client.id, 3, T0 + timedelta(days=2))
    await _answer(store, client.id, 10, T0 + timedelta(days=1))  # arrives late, answered before
    await _answer(store, client.id, None, T0 + timedelta(days=3))  # no score: not an NPS figure
    row = await _stats(engine, client.id)
    assert (row.last_nps_id, row.last_nps_score) == (latest, 3)
    assert row.last_nps_at == T0 + timedelta(days=2)


async def test_orders_and_answers_keep_each_others_part(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    client = await store.create_client(ClientInput("C1", name="Иван"))
    answer = await _answer(store, client.id, 6, T0)
    await store.add_order(OrderInput("O1", "C1", T0 + timedelta(hours=1), Decimal("100")))
    row = await _stats(engine, client.id)
    assert (row.orders_count, row.last_order_at) == (1, T0 + timedelta(hours=1))
    assert (row.last_nps_id, row.last_nps_score) == (answer, 6)
    await _answer(store, client.id, 8, T0 + timedelta(days=1))
    row = await _stats(engine, client.id)
    assert (row.orders_count, row.last_nps_score) == (1, 8)


async def test_client_with_only_unscored_answers_has_no_summary(
    store: SqlHistoryStore, engine: AsyncEngine
) -> None:
    client = await store.create_client(ClientInput("C1", name="Иван"))
    await _answer(store, client.id, None, T0)
    assert await _stats(engine, client.id) is None


async def test_declared_summary_table_matches_the_migrations(engine: AsyncEngine) -> None:
    assert await schema_drift(engine, "client_stats") == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bare_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (the migration is run step by step on it)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'steps.db'}"
        return
    admin: str = request.getfixturevalue("pg_admin_url")
    name = f"povtor_test_{uuid.uuid4().hex[:12]}"
    run_blocking(_pg_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        run_blocking(_pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_migration_backfills_last_answers_stored_before_it(bare_url: str) -> None:
    in_thread(upgrade, bare_url, "crm_sync_0006")
    engine = create_engine(bare_url)
    try:
        async with engine.begin() as conn:
            ids = []
            for code in ("BUYER", "ANSWERED", "SILENT"):
                values = {"external_id": code, "name": code, "timezone": "Europe/Moscow"}
                values |= {"telegram_reachable": True, "created_at": T0, "updated_at": T0}
                ids.append(
                    (
                        await conn.execute(
                            insert(ClientRow).values(values).returning(ClientRow.id)
                        )
                    ).scalar_one()
                )
            buyer, answered, silent = ids
            for n, client in enumerate((buyer, buyer, silent)):
                await conn.execute(
                    insert(OrderRow).values(
                        external_id=f"O{n}",
                        client_id=client,
                        placed_at=T0 + timedelta(days=n),
                        amount=Decimal("10"),
                        currency="RUB",
                        created_at=T0,
                        updated_at=T0,
                    )
                )
            answers = [(buyer, 9, 0), (buyer, 2, 5), (buyer, None, 9), (answered, 7, 1)]
            for client, score, days in answers:
                await conn.execute(
                    insert(NpsResponseRow).values(
                        client_id=client,
                        score=score,
                        channel="call",
                        answered_at=T0 + timedelta(days=days),
                    )
                )
            await conn.execute(
                text(
                    "INSERT INTO client_stats (client_id, first_order_at, last_order_at, "
                    "orders_count, revenue) SELECT client_id, min(placed_at), max(placed_at), "
                    "count(*), sum(amount) FROM orders GROUP BY client_id"
                )
            )
        in_thread(upgrade, bare_url)
        row = await _stats(engine, buyer)
        assert (row.orders_count, row.last_order_at) == (2, T0 + timedelta(days=1))
        assert (row.last_nps_score, row.last_nps_at) == (2, T0 + timedelta(days=5))
        row = await _stats(engine, answered)
        assert (row.orders_count, row.last_order_at, row.last_nps_score) == (0, None, 7)
        row = await _stats(engine, silent)
        assert (row.orders_count, row.last_nps_id) == (1, None)
    finally:
        await engine.dispose()


async def test_imported_orders_moved_away_leave_the_answer_part(
    store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    header = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Валюта"]
    for code in ("C1", "C2"):
        await store.create_client(ClientInput(code, name=code))
    c1 = await store.find_client("C1")
    assert c1 is not None
    answer = await _answer(store, c1.id, 4, T0)
    first = write_csv(tmp_path / "a.csv", [header, ["O1", "C1", "01.02.2024", "100", ""]])
    await import_file(engine, Kind.ORDERS, first)
    row = await _stats(engine, c1.id)
    assert (row.orders_count, row.last_nps_id, row.last_nps_score) == (1, answer, 4)
    moved = write_csv(tmp_path / "b.csv", [header, ["O1", "C2", "01.02.2024", "100", ""]])
    await import_file(engine, Kind.ORDERS, moved)
    row = await _stats(engine, c1.id)  # no orders left, the answer still counts
    assert (row.orders_count, row.last_order_at, row.last_nps_score) == (0, None, 4)
