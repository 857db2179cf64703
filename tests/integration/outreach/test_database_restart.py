"""PostgreSQL restarted under a working worker: every session is cut while calls and messages
are being dispatched. The worker must live through it, and each attempt still ends exactly
once. Runs on a throwaway server of its own (restarting the shared one would cut every other
test's sessions too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.migrate import upgrade
from povtor.db import create_engine
from tests.conftest import _pg_admin, in_thread, run_blocking
from tests.integration.outreach.procs import Worker, journal_keys, wait_until, worker_env
from tests.integration.outreach.test_reliability import (
    assert_exactly_once,
    executions_recorded,
    scalar,
    seed,
    unfinished,
)
from tests.pg_server import NoPostgres, ThrowawayPostgres

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]


async def _unfinished_rows(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, state, channel, attempt_no, worker_id, lease_expires_at, takeovers, "
                "last_outcome, updated_at "
                "FROM outreach_attempts WHERE state NOT IN ('done', 'given_up')"
            )
        )
        found = [tuple(r) for r in rows]
    await engine.dispose()
    return found


@pytest.fixture
def own_postgres() -> Iterator[tuple[ThrowawayPostgres, str]]:
    server = ThrowawayPostgres()
    try:
        admin = server.start()
    except NoPostgres as err:
        pytest.skip(str(err))
    try:
        run_blocking(_pg_admin(admin, 'CREATE DATABASE "povtor_restart"'))
        url = admin.rsplit("/", 1)[0] + "/povtor_restart"
        in_thread(upgrade, url)
        yield server, url
    finally:
        server.stop()


async def test_postgres_restarted_mid_dispatch_loses_and_doubles_nothing(
    own_postgres: tuple[ThrowawayPostgres, str], tmp_path: Path
) -> None:
    server, url = own_postgres
    await seed(url, 200, telegram=True)  # 100 messages, 100 calls (+ their fallbacks)
    journal = tmp_path / "journal"
    env = worker_env(
        url, journal, tmp_path, POVTOR_TEST_CALL_S="0.05", POVTOR_OUTREACH_CONCURRENCY="20"
    )
    worker = Worker(env, tmp_path / "worker.log")
    try:

        async def some_done() -> bool:
            return sum(journal_keys(journal).values()) >= 40

        await wait_until(some_done, 60, what="the first contacts")
        in_thread(server.restart)  # every session of the worker is cut mid-batch
        assert worker.proc.poll() is None, worker.text()[-3000:]

        async def all_done() -> bool:
            return await unfinished(url) == 0

        try:
            await wait_until(all_done, 120, what="every attempt to end after the restart")
        except AssertionError as err:
            raise AssertionError(f"{err}: {await _unfinished_rows(url)}") from None
        assert worker.proc.poll() is None, "the worker died with the database"
    finally:
        code = await worker.stop()
    assert code == 0, worker.text()[-3000:]
    assert_exactly_once(journal, await executions_recorded(url))
    assert await scalar(url, "SELECT count(*) FROM outreach_attempts WHERE state = 'done'") == 300
    log = worker.text()
    # the failure is visible to the operator, not swallowed
    assert "dispatch round failed" in log or "failed; retrying" in log, log[-3000:]
    assert "Traceback" in log  # with the cause, for the operator
