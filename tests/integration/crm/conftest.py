"""The CRM sync against the fake Bitrix24 and amoCRM APIs over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_sync.connectors.amocrm import AmoCrm
from crm_sync.connectors.amocrm_auth import AmoAuth, OAuthClient, Tokens
from crm_sync.connectors.bitrix24 import Bitrix24
from crm_sync.connectors.http import CrmHttp, RateLimiter
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from crm_sync.history.timeline_feed import SqlTimelineFeed
from crm_sync.outbound.engine import CrmSync
from crm_sync.outbound.options import SyncOptions
from crm_sync.outbound.tables import CrmPushRow
from crm_sync.outbound.tokens import SqlTokenStore
from povtor.db import is_sqlite, session_factory
from povtor.domain import ChannelKind, EventKind, ReasonCategory
from povtor.ports import NewEvent, NewNpsResponse, NewTask
from tests.fakes import amocrm_api
from tests.fakes.amocrm_api import FakeAmoCrm
from tests.fakes.bitrix24_api import FakeBitrix24

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
FAST = 1000.0  # requests per second when a test is not about rate limits
RATE_LIMIT_WAIT_S = 0.05  # first wait after a rate-limit answer (the CRMs' own: ~1 s)


@pytest.fixture
async def bitrix() -> AsyncIterator[FakeBitrix24]:
    fake = FakeBitrix24(bucket_size=10_000, leak_per_s=10_000)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def amo() -> AsyncIterator[FakeAmoCrm]:
    fake = FakeAmoCrm(rate_limit=10_000)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def options(db_url: str, **overrides: Any) -> SyncOptions:
    """Quick retries for tests; the whole timeline (events are written before the sync)."""
    base = SyncOptions(
        batch_size=50,
        scan_size=100,
        poll_interval_s=0.05,
        max_attempts=5,
        retry_backoff_s=0.01,
        retry_max_s=0.05,
        lease_s=30.0,
        gap_wait_s=0.0 if is_sqlite(db_url) else 5.0,
        backfill=True,
    )
    return replace(base, **overrides)


def bitrix_sync(
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    fake: FakeBitrix24,
    *,
    owner: str = "worker-1",
    rate: float = FAST,
    burst: int = 50,
    **overrides: Any,
) -> CrmSync:
    connector = Bitrix24(
        fake.webhook_url,
        CrmHttp("Bitrix24", RateLimiter(rate, burst)),
        rate_limit_wait_s=RATE_LIMIT_WAIT_S,
    )
    return CrmSync(
        sessions,
        connector,
        SqlHistoryStore(sessions),
        options(db_url, **overrides),
        feed=SqlTimelineFeed(sessions),
        owner=owner,
    )


def amo_sync(
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    fake: FakeAmoCrm,
    tokens: Tokens,
    *,
    owner: str = "worker-1",
    rate: float = FAST,
    burst: int = 50,
    oauth: bool = True,
    **overrides: Any,
) -> CrmSync:
    http = CrmHttp("amoCRM", RateLimiter(rate, burst))
    client = (
        OAuthClient(amocrm_api.CLIENT_ID, amocrm_api.CLIENT_SECRET, amocrm_api.REDIRECT_URI)
        if oauth
        else None
    )
    auth = AmoAuth(http, fake.base_url, SqlTokenStore(sessions, "amocrm", tokens), client)
    connector = AmoCrm(fake.base_url, http, auth, rate_limit_wait_s=RATE_LIMIT_WAIT_S)
    return CrmSync(
        sessions,
        connector,
        SqlHistoryStore(sessions),
        options(db_url, **overrides),
        feed=SqlTimelineFeed(sessions),
        owner=owner,
    )


@dataclass
class Timeline:
    """Clients and their timeline, as the bot, the call engine and the outreach engine
    write it; ``pushable`` counts the events the default sync kinds send to a CRM."""

    store: SqlHistoryStore
    pushable: int = 0
    external: dict[int, str] = field(default_factory=dict)

    async def client(self, name: str, phone: str | None = None) -> int:
        external_id = f"C{len(self.external) + 1}"
        client = await self.store.create_client(
            ClientInput(external_id, name=name, phones=(phone,) if phone else ())
        )
        self.external[client.id] = external_id
        return client.id

    async def nps(self, client_id: int, score: int, reason: str | None = None) -> None:
        await self.store.record_nps(
            NewNpsResponse(
                client_id,
                score,
                ChannelKind.TELEGRAM,
                reason_text=reason,
                reason_category=ReasonCategory.DELIVERY if reason else None,
                answered_at=T0,
            )
        )
        self.pushable += 1

    async def complaint(self, client_id: int, text: str) -> None:
        await self.store.append_event(NewEvent(client_id, EventKind.COMPLAINT, text, at=T0))
        self.pushable += 1

    async def outcome(self, client_id: int, attempt_id: int, outcome: str = "answered") -> None:
        await self.store.append_event(
            NewEvent(
                client_id,
                EventKind.NOTE,
                f"Обзвон (повторный заказ, звонок): {outcome}",
                at=T0,
                ref=f"attempt:{attempt_id}",
                data={"attempt_id": attempt_id, "purpose": "reorder", "outcome": outcome},
                dedup_key=f"outreach:{attempt_id}",
            )
        )
        self.pushable += 1

    async def task(self, client_id: int, title: str) -> None:
        await self.store.create_task(
            NewTask(client_id, "callback", title, due_at=T0 + timedelta(days=1))
        )
        self.pushable += 1

    async def opt_out(self, client_id: int) -> None:
        await self.store.set_opt_out(client_id, True, source="bot")
        self.pushable += 1

    async def not_pushed(self, client_id: int, n: int) -> None:
        """An order and a message sent: they stay in Povtor."""
        await self.store.add_order(
            OrderInput(f"O{client_id}-{n}", self.external[client_id], T0, Decimal("990"))
        )
        await self.store.append_event(
            NewEvent(client_id, EventKind.MESSAGE_OUT, f"Напоминание {n}", at=T0)
        )


@pytest.fixture
def timeline(store: SqlHistoryStore) -> Timeline:
    return Timeline(store)


@asynccontextmanager
async def running(sync: CrmSync) -> AsyncIterator[asyncio.Event]:
    """The sync's worker loop in a task; stopped (its round finished) on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await task
        await sync.connector.aclose()


async def settled(sync: CrmSync, within: float = 30.0) -> None:
    """Until a round of the running sync ends with the timeline read to its end and nothing
    left to push (every event done or failed)."""
    async with asyncio.timeout(within):
        while True:
            await sync.round_done.wait()
            sync.round_done.clear()
            status = await sync.state.status(sync.feed, errors=0)
            idle = status.counts["pending"] == status.counts["sending"] == 0
            if idle and status.cursor == status.head:
                return


async def push_rows(sessions: async_sessionmaker[AsyncSession]) -> list[CrmPushRow]:
    async with sessions() as session:
        return list(await session.scalars(select(CrmPushRow).order_by(CrmPushRow.event_id)))
