"""Login throttling in the dashboard's table, decided by a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard.throttle import MAX_LOCKOUT_S, LoginThrottle
from povtor.db import session_factory
from tests.integration.schema import schema_drift


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_locks_after_max_failures_and_unlocks_after_the_lockout(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    throttle = LoginThrottle(session_factory(engine), 3, 60.0, clock)
    await throttle.failed("login:anna")
    await throttle.failed("login:anna")
    assert await throttle.retry_after("login:anna") == 0
    await throttle.failed("login:anna")
    assert await throttle.retry_after("login:anna") == 60.0
    clock.move(61)
    assert await throttle.retry_after("login:anna") == 0


async def test_each_further_failure_doubles_the_lockout_up_to_an_hour(
    engine: AsyncEngine,
) -> None:
    throttle = LoginThrottle(session_factory(engine), 1, 600.0, Clock())
    waits = []
    for _ in range(5):
        await throttle.failed("k")
        waits.append(await throttle.retry_after("k"))
    assert waits == [600.0, 1200.0, 2400.0, MAX_LOCKOUT_S, MAX_LOCKOUT_S]


async def test_success_clears_the_count_and_keys_are_independent(engine: AsyncEngine) -> None:
    throttle = LoginThrottle(session_factory(engine), 2, 60.0, Clock())
    await throttle.failed("login:anna", "ip:1")
    await throttle.succeeded("login:anna")
    await throttle.failed("login:anna")
    assert await throttle.retry_after("login:anna") == 0
    assert await throttle.retry_after("ip:1") == 0
    await throttle.failed("ip:1")
    assert await throttle.retry_after("login:anna", "ip:1") == 60.0
    assert await throttle.retry_after("login:boris") == 0


async def test_old_failures_are_forgotten(engine: AsyncEngine) -> None:
    clock = Clock()
    throttle = LoginThrottle(session_factory(engine), 2, 60.0, clock)
    await throttle.failed("k")
    clock.move(MAX_LOCKOUT_S + 1)
    await throttle.failed("k")
    assert await throttle.retry_after("k") == 0


async def test_two_throttles_on_one_database_count_the_same_failures(
    engine: AsyncEngine,
) -> None:
    """Two serving processes: failures seen by either lock the key in both."""
    clock = Clock()
    here = LoginThrottle(session_factory(engine), 3, 60.0, clock)
    there = LoginThrottle(session_factory(engine), 3, 60.0, clock)
    await here.failed("login:anna")
    await there.failed("login:anna")
    assert await here.retry_after("login:anna") == 0
    await here.failed("login:anna")
    assert await there.retry_after("login:anna") == 60.0
    await there.succeeded("login:anna")
    assert await here.retry_after("login:anna") == 0


async def test_migrations_create_exactly_the_declared_dashboard_tables(
    engine: AsyncEngine,
) -> None:
    assert await schema_drift(engine, "'dashboard_") == []
