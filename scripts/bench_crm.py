"""CRM sync throughput: events pushed per second and HTTP requests per event, Povtor's own cost.

A fresh database (SQLite file, or a new PostgreSQL database) gets ``--clients`` clients, each
with an NPS answer with a reason, a complaint, an outreach outcome and an order (not pushed);
half of them already exist in the fake Bitrix24 (found by phone), the other half are created.
Then one ``sync_once`` pushes everything to the fake Bitrix24 (``tests/fakes/bitrix24_api.py``,
real HTTP on loopback, in this process) with the client-side limiter wide open, and a second
pass after new events shows the cost once contacts are known. The real portal allows ~2
requests a second: the time that would take is printed next to it.

    .venv/bin/python scripts/bench_crm.py --clients 500 --backends sqlite postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.migrate import upgrade_async
from crm_sync.connectors.bitrix24 import Bitrix24
from crm_sync.connectors.http import CrmHttp, RateLimiter
from crm_sync.history.store import ClientInput, SqlHistoryStore
from crm_sync.history.timeline_feed import SqlTimelineFeed
from crm_sync.outbound.engine import CrmSync
from crm_sync.outbound.options import SyncOptions
from povtor.db import create_engine, is_sqlite, session_factory
from povtor.domain import ChannelKind, EventKind, ReasonCategory
from povtor.ports import NewEvent, NewNpsResponse
from tests.fakes.bitrix24_api import FakeBitrix24

PG_ADMIN = os.environ.get(
    "POVTOR_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


async def _pg_admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


async def populate(store: SqlHistoryStore, fake: FakeBitrix24, clients: int, tag: str) -> int:
    events = 0
    for n in range(clients):
        phone = f"+7916{n:07d}"
        client = await store.create_client(
            ClientInput(f"{tag}{n}", name=f"Клиент {n}", phones=(phone,))
        )
        if n % 2 == 0 and tag == "A":
            fake.add_contact(f"Клиент {n}", phones=(f"8 (916) {n:07d}",))
        await store.record_nps(
            NewNpsResponse(
                client.id,
                n % 11,
                ChannelKind.TELEGRAM,
                reason_text="Долго везли",
                reason_category=ReasonCategory.DELIVERY,
            )
        )
        await store.append_event(NewEvent(client.id, EventKind.COMPLAINT, "Курьер опоздал"))
        await store.append_event(
            NewEvent(
                client.id,
                EventKind.NOTE,
                "Обзвон (повторный заказ, звонок): ответил",
                data={"outcome": "answered", "purpose": "reorder"},
            )
        )
        await store.append_event(NewEvent(client.id, EventKind.ORDER, "Заказ"))
        events += 3
    return events


async def one(url: str, clients: int) -> None:
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    store = SqlHistoryStore(sessions)
    fake = FakeBitrix24(bucket_size=1e9, leak_per_s=1e9)
    await fake.start()
    try:
        events = await populate(store, fake, clients, "A")
        options = SyncOptions(
            backfill=True, gap_wait_s=0 if is_sqlite(url) else 60, batch_size=200
        )
        http = CrmHttp("Bitrix24", RateLimiter(1e6, 1000))
        sync = CrmSync(
            sessions,
            Bitrix24(fake.webhook_url, http),
            store,
            options,
            feed=SqlTimelineFeed(sessions),
            owner="bench",
        )
        for label in ("first pass (contacts found or created)", "second pass (contacts known)"):
            if label.startswith("second"):
                ids = [c.id for c in await store.search_clients(limit=clients)]
                for cid in ids:
                    await store.append_event(NewEvent(cid, EventKind.COMPLAINT, "Снова опоздал"))
                events = len(ids)
            before = len(fake.received)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            report = await sync.sync_once()
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            requests = len(fake.received) - before
            print(
                f"  {label}: {report.pushed}/{events} events in {wall:.1f} s "
                f"({report.pushed / wall:.0f}/s), {requests} requests "
                f"({requests / max(report.pushed, 1):.2f} per event), CPU {cpu:.1f} s "
                f"(povtor + fake), {wall / max(report.pushed, 1) * 1000:.1f} ms per event; "
                f"at Bitrix24's 2 requests/s: {requests / 2 / 60:.0f} min"
            )
        await sync.connector.aclose()
    finally:
        await fake.stop()
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    for backend in args.backends:
        print(f"{backend}, {args.clients} clients:")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                await one(f"sqlite+aiosqlite:///{folder}/bench.db", args.clients)
        else:
            name = f"povtor_bench_crm_{uuid.uuid4().hex[:8]}"
            await _pg_admin(f'CREATE DATABASE "{name}"')
            try:
                await one(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", args.clients)
            finally:
                await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; load average {os.getloadavg()[0]:.1f} (shared 2-core machine)")


if __name__ == "__main__":
    asyncio.run(main())
