"""The stored NPS days: the overview's trend and the reasons page add up the days the refresh
stored and count only the answers after it, equal to counting every answer; a period that
cannot be cut into days is counted whole (PostgreSQL stores them; SQLite counts on request)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.retention_view import SqlRetentionView
from crm_sync.history.store import ClientInput, SqlHistoryStore
from crm_sync.history.tables import NpsResponseRow
from crm_sync.metrics.nps_days import NpsDays
from crm_sync.metrics.snapshots import ReportSnapshots
from povtor.domain import ChannelKind, NpsGroup, ReasonCategory
from povtor.ports import NewNpsResponse
from tests.integration.schema import schema_drift

MOSCOW = ZoneInfo("Europe/Moscow")


def _midnight(days_ago: int) -> datetime:
    day = datetime.now(UTC).astimezone(MOSCOW).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(), MOSCOW).astimezone(UTC)


async def _answer(
    store: SqlHistoryStore, client: int, score: int, at: datetime, why: ReasonCategory | None
) -> int:
    saved = await store.record_nps(
        NewNpsResponse(client, score, ChannelKind.TELEGRAM, reason_category=why, answered_at=at)
    )
    return saved.id


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_stored_days_plus_later_answers_equal_counting_every_answer(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    client = (await store.create_client(ClientInput("D1", name="Клиент"))).id
    # around Moscow midnights (21:00 UTC): the day of an answer is the business's day
    early = await _answer(store, client, 3, _midnight(9) + timedelta(minutes=5), None)
    await _answer(store, client, 9, _midnight(9) - timedelta(minutes=5), ReasonCategory.PRICE)
    await _answer(store, client, 7, _midnight(3), ReasonCategory.DELIVERY)
    await _answer(store, client, 2, _midnight(0) + timedelta(minutes=1), ReasonCategory.PRICE)
    view = SqlRetentionView(engine, store)
    end = datetime.now(UTC) + timedelta(minutes=30)
    bounds = [_midnight(14), _midnight(7), _midnight(0), end]
    counted = await view.nps_counts(bounds)  # nothing stored yet: every answer counted
    reasons = set(await view.reasons(_midnight(14), end))
    await ReportSnapshots(engine).refresh()  # stores the days, as after a planning pass
    # an answer recorded after the refresh, as answers are: at the time it is given
    await _answer(store, client, 10, datetime.now(UTC), ReasonCategory.PRICE)
    expected = [dict(c) for c in counted]
    expected[-1][NpsGroup.PROMOTER] += 1
    assert [dict(c) for c in await view.nps_counts(bounds)] == expected
    assert counted[0] == {NpsGroup.PROMOTER: 1, NpsGroup.PASSIVE: 0, NpsGroup.DETRACTOR: 1}
    later = set(await view.reasons(_midnight(14), end))
    assert len(later) == len(reasons)
    assert sum(r.answers for r in later) == sum(r.answers for r in reasons) + 1

    # the stored days are what is read: an answer gone since the refresh is still counted
    # there, and a period that is not cut at midnights is counted whole (without it)
    async with engine.begin() as conn:
        await conn.execute(delete(NpsResponseRow).where(NpsResponseRow.id == early))
    assert (await view.nps_counts(bounds))[0][NpsGroup.DETRACTOR] == 1
    odd = [_midnight(14) + timedelta(hours=1), _midnight(7)]
    assert (await view.nps_counts(odd))[0][NpsGroup.DETRACTOR] == 0
    await NpsDays(engine).store(datetime.now(UTC))
    assert (await view.nps_counts(bounds))[0][NpsGroup.DETRACTOR] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_stores_no_days_and_counts_on_request(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    client = (await store.create_client(ClientInput("D1", name="Клиент"))).id
    await _answer(store, client, 3, _midnight(2), None)
    await ReportSnapshots(engine).refresh()
    await _answer(store, client, 1, _midnight(1), None)
    view = SqlRetentionView(engine, store)
    async with engine.connect() as conn:
        assert await NpsDays(engine).through(conn) is None
    [counts] = await view.nps_counts([_midnight(5), datetime.now(UTC)])
    assert counts[NpsGroup.DETRACTOR] == 2


async def test_migration_creates_exactly_the_declared_tables_and_index(
    engine: AsyncEngine,
) -> None:
    assert await schema_drift(engine, "nps_days", "stored_figures", "ix_tasks_client") == []
    async with engine.connect() as conn:
        names = await conn.run_sync(
            lambda sync: {i["name"] for i in inspect(sync).get_indexes("tasks")}
        )
    assert "ix_tasks_client" in names
