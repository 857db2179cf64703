"""Dispatcher throughput: claims per second with 1, 2 and 4 worker processes over N attempts
(default 100,000) with a no-op channel on PostgreSQL, and a check for double claims.

    .venv/bin/python scripts/bench_dispatch.py [--attempts 100000] [--workers 1 2 4] [--rounds 3]

Each worker is a separate process running the real Dispatcher (one transaction per round:
the previous round's outcomes, claims with FOR UPDATE SKIP LOCKED, policies at contact time,
the starts; the clients read in the round's transaction, as the composition root wires it);
the no-op channel logs every execution key to a per-process file, and the parent counts keys
seen twice. Follow-ups (timeline notes) are not part of this measurement. A dispatcher claims
at most ``--concurrency`` attempts per round (its free execution slots), the bare loop
``--batch``.

The anchor, alternately with the dispatcher for ``--rounds`` rounds per worker count: the same
claims over the same freshly reset attempts done by a bare loop, one connection per worker, each
repeating ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT batch) RETURNING id``
until nothing is due. Printed first: the dispatcher's claim rate as a share of the bare loop's
(median of the rounds) per worker count, and the machine's load; then the ``workers=N`` lines
(the median round).

Beside it, in the same rounds: the claim step alone, ``AttemptQueue.claim`` (the queue's own
claim: the lease statement with its filter of paused purposes, every row made a claim) repeated
by N queues over one engine in one process, as the bare loop runs its N connections, until
nothing is due: no policies, no execution, no outcomes. Its lines say "claim step alone". The
first ratio is the whole dispatch round end to end (claim, policies, execution on the no-op
channel, outcome); the second is what the claim alone costs against the bare statement.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from povtor.db import create_engine

SEED = """
INSERT INTO clients (external_id, name, timezone, telegram_reachable, created_at, updated_at)
SELECT 'B' || g, '', 'Europe/Moscow', true, now(), now() FROM generate_series(1, :n) AS g;
"""
RESET = [
    "TRUNCATE outreach_outcomes, outreach_contacts, outreach_attempts RESTART IDENTITY",
    """INSERT INTO outreach_attempts (client_id, purpose, channel, state, not_before,
           idempotency_key, attempt_no, reason, takeovers, created_at, updated_at)
       SELECT id, 'reorder', 'call', 'planned', now() - interval '1 minute', 'k' || id, 1, '',
              0, now(), now() FROM clients""",
    "ANALYZE outreach_attempts",
]


async def _sql(url: str, statements: list[str], params: dict[str, int] | None = None) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement), params or {})
    await engine.dispose()


# Nothing due and nothing leased (every attempt of the benchmark ends done): two probes of the
# queue's partial indexes, not a count over the whole table (at 100,000 attempts that count
# took a share of the two cores from the workers it was timing, every time it ran).
UNFINISHED = """
SELECT EXISTS (SELECT 1 FROM outreach_attempts WHERE state IN ('planned', 'retry_scheduled'))
    OR EXISTS (SELECT 1 FROM outreach_attempts WHERE state IN ('claimed', 'in_progress'))"""


async def _wait_until_done(url: str) -> None:
    """Until no attempt is left unfinished: one connection looking every 0.02 s (the end of a
    run is seen within that), so the measuring side takes as little of the machine from the
    workers as it can."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        while True:
            if not await conn.fetchval(UNFINISHED):
                return
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


BARE_CLAIM = """
UPDATE outreach_attempts SET state = 'claimed', worker_id = $1, lease_token = $1,
       lease_expires_at = now() + interval '2 minutes', updated_at = now()
WHERE id IN (SELECT id FROM outreach_attempts
             WHERE state IN ('planned', 'retry_scheduled') AND not_before <= now()
             ORDER BY not_before LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id"""


async def bare_loop(url: str, workers: int, batch: int) -> tuple[float, int, int]:
    """The anchor: ``workers`` connections claiming with the bare statement until none is due.
    Returns seconds, attempts claimed and ids claimed twice."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conns = [await asyncpg.connect(dsn) for _ in range(workers)]
    claimed: list[list[int]] = [[] for _ in range(workers)]

    async def one(i: int) -> None:
        while rows := await conns[i].fetch(BARE_CLAIM, f"bare-{i}", batch):
            claimed[i].extend(r["id"] for r in rows)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(workers)))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
    seen = collections.Counter(i for ids in claimed for i in ids)
    return elapsed, len(seen), sum(1 for n in seen.values() if n > 1)


async def claim_loop(url: str, workers: int, batch: int) -> tuple[float, int, int]:
    """The claim step alone: ``workers`` attempt queues, one task each, calling
    ``AttemptQueue.claim`` until none is due. Returns seconds, attempts claimed and ids claimed
    twice."""
    from outreach.queue import AttemptQueue
    from povtor.db import session_factory, utcnow

    engine = create_engine(url, pool_size=workers)
    sessions = session_factory(engine)
    queues = [
        AttemptQueue(sessions, worker_id=f"claim-{i}", lease=timedelta(seconds=120))
        for i in range(workers)
    ]
    claimed: list[list[int]] = [[] for _ in range(workers)]

    async def one(i: int) -> None:
        while claims := await queues[i].claim(utcnow(), batch):
            claimed[i].extend(c.attempt.id for c in claims)

    try:
        async with contextlib.AsyncExitStack() as stack:  # the pool's connections open
            for _ in range(workers):  # before the start, as the bare loop's
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(text("SELECT 1"))
        # each queue's statement compiled and prepared before the start (a claim of what was
        # due in 1970: nothing), as the bare loop's statement is text sent as it is
        await asyncio.gather(*(q.claim(datetime(1970, 1, 1, tzinfo=UTC), batch) for q in queues))
        # start-up's objects out of the collector's sight, as the dispatcher's workers above
        # and `povtor run` do: without it each claim paid the scans of this process's imports
        gc.freeze()
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(workers)))
        elapsed = time.perf_counter() - start
    finally:
        await engine.dispose()
    seen = collections.Counter(i for ids in claimed for i in ids)
    return elapsed, len(seen), sum(1 for n in seen.values() if n > 1)


# What a dispatcher's round wrote: the indexes of the tables it writes (their size after the
# round: every attempt's entries, dead ones included) and the attempts' updates, heap-only
# (HOT: no index entry) or not.
WRITES = """
SELECT (SELECT count(*) FROM pg_index WHERE indrelid = ANY(t.ids)),
       (SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index
        WHERE indrelid = ANY(t.ids)),
       (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'outreach_attempts'),
       (SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'outreach_attempts')
FROM (SELECT ARRAY['outreach_attempts'::regclass, 'outreach_contacts'::regclass,
                   'outreach_outcomes'::regclass]::oid[] AS ids) AS t"""


async def _writes(url: str) -> tuple[int, int, int, int]:
    """Indexes and their bytes, attempts updated and HOT-updated (counters since the start)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(WRITES)
    finally:
        await conn.close()
    assert row is not None
    return row[0], row[1], row[2], row[3]


# -- the worker process ---------------------------------------------------------------------


class NoopChannel:
    def __init__(self, log: list[str]) -> None:
        from povtor.domain import ChannelKind

        self.kind = ChannelKind.CALL
        self.log = log

    async def execute(self, attempt, client):  # type: ignore[no-untyped-def]
        from povtor.domain import Outcome, OutcomeKind

        self.log.append(f"{attempt.idempotency_key}#{attempt.attempt_no}")
        return Outcome(OutcomeKind.ANSWERED)


async def worker(url: str, keys_file: Path, concurrency: int, batch: int) -> None:
    from crm_sync.history.client_batch import load_clients
    from crm_sync.history.store import SqlHistoryStore
    from outreach.dispatcher import Dispatcher, DispatchSettings
    from outreach.queue import AttemptQueue
    from outreach.rules import Caps, ContactRules, Window
    from povtor.db import session_factory
    from povtor.domain import ChannelKind

    engine = create_engine(url, pool_size=10)
    sessions = session_factory(engine)
    always = Window(dtime(0), dtime.max)
    rules = ContactRules(
        call_weekday=always,
        call_weekend=always,
        message=always,
        holiday_calls=True,
        call_caps=Caps(1000, 1000, 1000),
        require_ad_consent=False,  # claims are measured, not consents: every attempt is started
    )
    log: list[str] = []
    dispatcher = Dispatcher(
        AttemptQueue(sessions, worker_id=f"bench-{os.getpid()}", lease=timedelta(seconds=120)),
        SqlHistoryStore(sessions),
        {ChannelKind.CALL: NoopChannel(log)},
        rules,
        settings=DispatchSettings(batch_size=batch, concurrency=concurrency, poll_interval_s=0.05),
        clients_in=load_clients,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with engine.connect() as first, engine.connect() as second:  # as the bare loop's
        for conn in (first, second):  # connections, open before the start (rounds, LISTEN)
            await conn.execute(text("SELECT 1"))
    gc.freeze()  # start-up's objects out of the collector's sight, as `povtor run` does
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the start gun
    await dispatcher.run(stop)
    await engine.dispose()
    await asyncio.to_thread(keys_file.write_text, "\n".join(log))


# -- the parent -----------------------------------------------------------------------------


def run_round(url: str, workers: int, attempts: int, tmp: Path, concurrency: int, batch: int):  # type: ignore[no-untyped-def]
    asyncio.run(_sql(url, RESET))
    before = asyncio.run(_writes(url))
    procs = []
    for i in range(workers):
        keys = tmp / f"keys-{workers}-{i}"
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", url, str(keys),
                 str(concurrency), str(batch)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    asyncio.run(_wait_until_done(url))
    elapsed = time.perf_counter() - start
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)
    time.sleep(0.5)  # the workers' backends hand their table counters over as they exit
    indexes, index_bytes, updates, hot = asyncio.run(_writes(url))
    writes = (indexes, index_bytes, updates - before[2], hot - before[3])
    seen: collections.Counter[str] = collections.Counter()
    per_worker = []
    for i in range(workers):
        lines = (tmp / f"keys-{workers}-{i}").read_text().split()
        per_worker.append(len(lines))
        seen.update(lines)
    doubles = sum(1 for n in seen.values() if n > 1)
    return elapsed, len(seen), doubles, per_worker, writes


def compare(
    url: str, n: int, args: argparse.Namespace, tmp: Path, load: Any
) -> tuple[Any, Any, list[str]]:
    """The dispatcher with ``n`` workers and the claim step alone against the bare loop on
    ``n`` connections, in turn."""
    from bench_common import Comparison, alternate_many

    rounds: list[tuple[float, int, int, list[int], tuple[int, int, int, int]]] = []
    bare: list[tuple[float, int, int]] = []
    alone: list[tuple[float, int, int]] = []

    def subject() -> float:
        rounds.append(run_round(url, n, args.attempts, tmp, args.concurrency, args.batch))
        return rounds[-1][0]  # both sides claim every attempt: seconds compare

    def anchor() -> float:
        asyncio.run(_sql(url, RESET))
        bare.append(asyncio.run(bare_loop(url, n, args.batch)))
        return bare[-1][0]

    def claim_alone() -> float:
        asyncio.run(_sql(url, RESET))
        alone.append(asyncio.run(claim_loop(url, n, args.batch)))
        return alone[-1][0]

    both = alternate_many(anchor, {"dispatcher": subject, "claim": claim_alone}, args.rounds, load)
    pairs = both["dispatcher"]
    comparison = Comparison(
        f"dispatcher claims/s, {n} workers",
        "bare SKIP LOCKED loop",
        pairs,
        speed=True,
        goal=">= 0.5x" if n == 4 else "",
    )
    middle = statistics.median_low(r[0] for r in rounds)
    elapsed, executed, doubles, per_worker, writes = next(r for r in rounds if r[0] == middle)
    bare_rate = statistics.median(b[1] / b[0] for b in bare)
    claim_only = Comparison(
        f"claim step alone (AttemptQueue.claim) claims/s, {n} workers",
        "bare SKIP LOCKED loop",
        both["claim"],
        speed=True,
    )
    alone_rate = statistics.median(a[1] / a[0] for a in alone)
    return (
        comparison,
        claim_only,
        [
            f"workers={n}: {executed} attempts in {elapsed:.1f} s = "
            f"{executed / elapsed:,.0f} claims/s; double claims: {doubles}; "
            f"per worker: {per_worker}",
            f"  bare loop, {n} connections: median {bare_rate:,.0f} claims/s; "
            f"double claims: {sum(b[2] for b in bare)}",
            f"  claim step alone, AttemptQueue.claim, {n} queues in one process: median "
            f"{alone_rate:,.0f} claims/s; double claims: {sum(a[2] for a in alone)}; "
            f"attempts claimed per round: {sorted({a[1] for a in alone})}",
            f"  writes, same round: {writes[0]} indexes on attempts, contacts and outcomes, "
            f"{writes[1] / 2**20:.1f} MB after it; attempts updated {writes[2]:,}, "
            f"of them heap-only (HOT, no index entry) {writes[3]:,}",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="anchor/dispatcher rounds")
    parser.add_argument("--database", help="name of the throwaway PostgreSQL database")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, keys, concurrency, batch = args.worker
        asyncio.run(worker(url, Path(keys), int(concurrency), int(batch)))
        return
    from bench_common import LoadWatch, drop_database, fresh_database, report_first

    load = LoadWatch()
    url = fresh_database("postgres", Path(tempfile.gettempdir()), args.database)
    try:
        asyncio.run(_sql(url, [SEED], {"n": args.attempts}))
        lines = [f"{args.attempts} attempts, no-op channel, PostgreSQL, {os.cpu_count()} cores"]
        comparisons, claim_steps = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.workers:
                comparison, claim_step, rows = compare(url, n, args, Path(tmp), load)
                comparisons.append(comparison)
                claim_steps.append(claim_step)
                lines += rows
        report_first([*comparisons, *claim_steps], load, lines)
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
