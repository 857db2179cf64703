"""The claims of updates (see ``bot.update_log``), on SQLite and PostgreSQL: a handled update is
skipped, one in flight is busy, and one a dead run never finished is taken again, by one run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.update_log import UPDATES, Claim, UpdateLog
from povtor.db import session_factory, utcnow

LEASE = timedelta(seconds=30)


def _log(engine: AsyncEngine, run: str) -> UpdateLog:
    return UpdateLog(session_factory(engine), run, LEASE)


async def _age(engine: AsyncEngine, update_id: int, by: timedelta) -> None:
    """The claim of ``update_id`` made ``by`` earlier (a run that claimed it long ago)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(UPDATES)
            .where(UPDATES.c.update_id == update_id)
            .values(received_at=utcnow() - by)
        )


async def test_a_handled_update_is_skipped_and_one_in_flight_is_busy(engine: AsyncEngine) -> None:
    mine, other = _log(engine, "run-a"), _log(engine, "run-b")
    assert await mine.claim_updates([1, 2]) == {1: Claim.FRESH, 2: Claim.FRESH}
    await mine.mark_handled([1])
    assert await mine.claim_updates([1, 2]) == {1: Claim.DONE, 2: Claim.BUSY}
    assert await other.claim_updates([1, 2, 3]) == {1: Claim.DONE, 2: Claim.BUSY, 3: Claim.FRESH}


async def test_a_dead_runs_unhandled_claim_is_taken_again_once_stale(engine: AsyncEngine) -> None:
    dead, alive = _log(engine, "run-dead"), _log(engine, "run-alive")
    await dead.claim_updates([10, 11])
    await dead.mark_handled([11])
    await _age(engine, 10, LEASE + timedelta(seconds=1))
    await _age(engine, 11, LEASE + timedelta(seconds=1))
    assert await alive.claim_updates([10, 11]) == {10: Claim.FRESH, 11: Claim.DONE}
    assert await dead.claim_updates([10]) == {10: Claim.BUSY}  # now the live run's
    await dead.mark_handled([10])  # the dead run's late mark does not count
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT claimed_by, handled_at FROM bot_updates WHERE update_id = 10")
            )
        ).one()
    assert row == ("run-alive", None)
    await alive.mark_handled([10])
    assert await dead.claim_updates([10]) == {10: Claim.DONE}


async def test_a_stale_claim_is_taken_by_one_of_two_runs(engine: AsyncEngine) -> None:
    dead = _log(engine, "run-dead")
    await dead.claim_updates([20])
    await _age(engine, 20, LEASE * 2)
    runs = [_log(engine, "run-x"), _log(engine, "run-y")]
    found = await asyncio.gather(*(r.claim_updates([20]) for r in runs))
    assert sorted(f[20].value for f in found) == ["busy", "fresh"]


async def test_a_failed_update_is_released_by_its_own_run_only(engine: AsyncEngine) -> None:
    mine, other = _log(engine, "run-a"), _log(engine, "run-b")
    await mine.claim_updates([30])
    await other.release_updates([30])
    assert await other.claim_updates([30]) == {30: Claim.BUSY}
    await mine.release_updates([30])
    assert await other.claim_updates([30]) == {30: Claim.FRESH}


async def test_claims_handled_long_ago_are_forgotten_the_rest_kept(engine: AsyncEngine) -> None:
    log = _log(engine, "run-a")
    await log.claim_updates([20, 21, 22])
    await log.mark_handled([20, 21])
    async with engine.begin() as conn:
        await conn.execute(
            update(UPDATES)
            .where(UPDATES.c.update_id == 20)
            .values(handled_at=utcnow() - timedelta(days=3))
        )

    assert await log.forget_handled(utcnow() - timedelta(days=2)) == 1

    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT update_id FROM bot_updates"))).scalars().all()
    assert sorted(left) == [21, 22]  # handled lately, and in flight
    assert await log.claim_updates([21, 22]) == {21: Claim.DONE, 22: Claim.BUSY}
