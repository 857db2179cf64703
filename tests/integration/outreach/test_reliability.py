"""Exactly once across real worker processes on a real PostgreSQL: a worker SIGKILLed in the
middle of a batch of calls and messages, and several workers racing over the same queue."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from sqlalchemy import text

from povtor.db import create_engine
from tests.conftest import truncate_all
from tests.integration.outreach.procs import Worker, journal_keys, wait_until, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

SEED_CLIENTS = """
INSERT INTO clients (external_id, name, timezone, telegram_chat_id, telegram_reachable,
                     created_at, updated_at)
SELECT 'R' || g, '', 'Europe/Moscow', CASE WHEN :telegram AND g % 2 = 0 THEN g END, true,
       now(), now()
FROM generate_series(1, :n) AS g
"""
SEED_ATTEMPTS = """
INSERT INTO outreach_attempts (client_id, purpose, channel, state, not_before, idempotency_key,
                               attempt_no, reason, takeovers, created_at, updated_at)
SELECT id, 'reorder', CASE WHEN telegram_chat_id IS NULL THEN 'call' ELSE 'telegram' END,
       'planned', now() - interval '1 minute', 'k' || id, 1, 'test', 0, now(), now()
FROM clients
"""


async def seed(url: str, n: int, *, telegram: bool) -> None:
    await truncate_all(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(SEED_CLIENTS), {"n": n, "telegram": telegram})
        await conn.execute(text(SEED_ATTEMPTS))
    await engine.dispose()


async def scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        value = (await conn.execute(text(sql))).scalar_one()
    await engine.dispose()
    return int(value)


async def unfinished(url: str) -> int:
    return await scalar(
        url, "SELECT count(*) FROM outreach_attempts WHERE state NOT IN ('done', 'given_up')"
    )


async def executions_recorded(url: str) -> collections.Counter[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.idempotency_key || '#' || o.attempt_no FROM outreach_outcomes o "
                "JOIN outreach_attempts a ON a.id = o.attempt_id WHERE NOT o.late"
            )
        )
        found = collections.Counter(r[0] for r in rows)
    await engine.dispose()
    return found


def assert_exactly_once(journal: Path, recorded: collections.Counter[str]) -> None:
    contacts = journal_keys(journal)
    twice = {k: n for k, n in contacts.items() if n > 1}
    assert not twice, f"contacted twice: {list(twice)[:10]}"
    assert not {k: n for k, n in recorded.items() if n > 1}
    # every contact has its outcome, and every outcome its contact
    assert set(contacts) == set(recorded)


async def test_worker_killed_mid_batch_then_restarted_ends_every_attempt_exactly_once(
    pg_database_url: str, tmp_path: Path
) -> None:
    url = pg_database_url
    await seed(url, 400, telegram=True)  # 200 messages, 200 calls (+ fallbacks and retries)
    journal = tmp_path / "journal"
    env = worker_env(
        url, journal, tmp_path, POVTOR_TEST_CALL_S="0.05", POVTOR_OUTREACH_CONCURRENCY="20"
    )
    first = Worker(env, tmp_path / "w1.log")

    async def some_done() -> bool:
        return sum(journal_keys(journal).values()) >= 120

    await wait_until(some_done, 60, what="the first contacts")
    first.kill()
    in_flight = await scalar(
        url, "SELECT count(*) FROM outreach_attempts WHERE state IN ('claimed', 'in_progress')"
    )
    assert in_flight > 0, "the kill should land in the middle of a batch"
    assert await unfinished(url) > 0

    second = Worker(env, tmp_path / "w2.log")

    async def all_done() -> bool:
        return await unfinished(url) == 0

    await wait_until(all_done, 120, what="every attempt to end")
    assert await second.stop() == 0

    assert_exactly_once(journal, await executions_recorded(url))
    # nothing lost: every message was followed by its fallback call, every call ended
    assert (
        await scalar(url, "SELECT count(*) FROM outreach_attempts WHERE fallback_of IS NOT NULL")
        == 200
    )
    assert await scalar(url, "SELECT count(*) FROM outreach_attempts WHERE state = 'done'") == 600
    assert await scalar(url, "SELECT count(*) FROM outreach_attempts WHERE takeovers > 0") > 0
    # ... and the timeline got one note per outcome
    notes = await scalar(url, "SELECT count(*) FROM events WHERE dedup_key LIKE 'outreach:exec:%'")
    assert notes == sum((await executions_recorded(url)).values())


@pytest.mark.parametrize("workers", [2, 4])
async def test_workers_racing_over_ten_thousand_attempts_never_claim_one_twice(
    pg_database_url: str, tmp_path: Path, workers: int
) -> None:
    url = pg_database_url
    await seed(url, 10_000, telegram=False)
    journal = tmp_path / "journal"
    env = worker_env(
        url,
        journal,
        tmp_path,
        POVTOR_OUTREACH_CONCURRENCY="100",
        POVTOR_OUTREACH_BATCH_SIZE="100",
        POVTOR_OUTREACH_LEASE_S="60",
        POVTOR_OUTREACH_RETRY_BUSY="0:1",
        POVTOR_LOG_LEVEL="WARNING",
    )
    procs = [Worker(env, tmp_path / f"w{i}.log") for i in range(workers)]

    async def all_done() -> bool:
        return await unfinished(url) == 0

    await wait_until(all_done, 240, what="10,000 attempts to end")
    for proc in procs:
        assert await proc.stop() == 0
    recorded = await executions_recorded(url)
    assert sum(recorded.values()) == 10_000
    assert_exactly_once(journal, recorded)
    # the work was shared: every worker executed some of it
    pids = collections.Counter(line.split("\t")[3] for line in journal.read_text().splitlines())
    assert len(pids) == workers
    for proc in procs:
        assert "outcomes refused" not in proc.text()


async def test_sigterm_drains_calls_in_flight_and_gives_back_the_rest(
    pg_database_url: str, tmp_path: Path
) -> None:
    url = pg_database_url
    await seed(url, 60, telegram=False)
    journal = tmp_path / "journal"
    env = worker_env(
        url,
        journal,
        tmp_path,
        POVTOR_TEST_CALL_S="0.5",
        POVTOR_OUTREACH_CONCURRENCY="5",
        POVTOR_OUTREACH_LEASE_S="60",
        POVTOR_OUTREACH_RETRY_BUSY="0:1",
    )
    worker = Worker(env, tmp_path / "w.log")

    async def calling() -> bool:
        return sum(journal_keys(journal).values()) >= 3

    await wait_until(calling, 60, what="the first calls")
    assert await worker.stop() == 0
    assert "draining" in worker.text()
    held = await scalar(
        url, "SELECT count(*) FROM outreach_attempts WHERE state IN ('claimed', 'in_progress')"
    )
    assert held == 0  # nothing stays leased to a worker that is gone
    assert await scalar(url, "SELECT count(*) FROM outreach_attempts WHERE state = 'planned'") > 0
    # every call that started was finished and recorded before the exit
    assert_exactly_once(journal, await executions_recorded(url))
