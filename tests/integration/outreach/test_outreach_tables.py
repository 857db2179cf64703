"""The outreach migrations build exactly the declared tables, and the queue's lease lookups
(takeovers, renewals, a worker giving back what it holds) go through the one partial index of
leased attempts (outreach_0004)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.schema import schema_drift

TABLES = (
    "'outreach_attempts'",
    "'outreach_outcomes'",
    "'outreach_contacts'",
    "'outreach_campaigns'",
    "'outreach_pauses'",
    "'outreach_actions'",
    "'outreach_workers'",
)


async def test_migrations_create_exactly_the_declared_outreach_tables(
    engine: AsyncEngine,
) -> None:
    assert await schema_drift(engine, *TABLES) == []


async def test_a_contact_is_kept_once_per_execution(engine: AsyncEngine) -> None:
    row = (
        "INSERT INTO outreach_contacts (client_id, channel, at, attempt_id, attempt_no)"
        " VALUES (1, 'call', CURRENT_TIMESTAMP, 7, :no)"
    )
    async with engine.begin() as conn:
        await conn.execute(text(row), {"no": 1})
        await conn.execute(text(row), {"no": 2})
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text(row), {"no": 1})
    async with engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM outreach_contacts"))
    assert count == 2


@pytest.mark.postgres
@pytest.mark.parametrize(
    "where",
    [
        "worker_id = 'w1' AND state IN ('claimed', 'in_progress')",  # renewal
        "worker_id = 'w1' AND state = 'claimed'",  # giving back the claimed
        "state = 'in_progress' AND lease_expires_at < now()",  # takeover
    ],
)
async def test_lease_lookups_use_the_leased_index(where: str, pg_database_url: str) -> None:
    from povtor.db import create_engine

    engine = create_engine(pg_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                r[0]
                for r in await conn.execute(
                    text(f"EXPLAIN SELECT id FROM outreach_attempts WHERE {where}")
                )
            )
    finally:
        await engine.dispose()
    assert "ix_outreach_attempts_lease" in plan, plan
