"""Outreach fixtures: a queue, a dispatcher and fake channels over the test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.client_batch import load_clients
from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import ClientInput, SqlHistoryStore
from outreach.dispatcher import Dispatcher, DispatchSettings
from outreach.queue import AttemptQueue, NewAttempt
from outreach.rules import ContactRules
from povtor.db import session_factory
from povtor.domain import ChannelKind, ConsentChannel, OutcomeKind, Purpose
from povtor.ports import Channel
from tests.fakes.outreach_channels import ScriptedChannel
from tests.integration.outreach.procs import kill_leftovers

# Tuesday 2026-03-03 12:00 in Moscow: inside every contact window.
NOON_MSK = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    yield
    kill_leftovers()


class Clock:
    def __init__(self, now: datetime = NOON_MSK) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(engine: AsyncEngine) -> AttemptQueue:
    return AttemptQueue(session_factory(engine), worker_id="w1", lease=timedelta(seconds=60))


@pytest.fixture
def lookup(engine: AsyncEngine) -> SqlPlanningSource:
    return SqlPlanningSource(session_factory(engine))


@pytest.fixture
def call() -> ScriptedChannel:
    return ScriptedChannel(ChannelKind.CALL)


@pytest.fixture
def telegram() -> ScriptedChannel:
    return ScriptedChannel(ChannelKind.TELEGRAM, default=OutcomeKind.DELIVERED)


@pytest.fixture
def make_dispatcher(
    queue: AttemptQueue, store: SqlHistoryStore, clock: Clock
) -> Callable[..., Dispatcher]:
    def make(*channels: Channel, rules: ContactRules | None = None, **kw: object) -> Dispatcher:
        return Dispatcher(
            queue,
            store,
            {c.kind: c for c in channels},
            rules or ContactRules(retries=ContactRules().retries),
            settings=DispatchSettings(**kw),  # type: ignore[arg-type]
            clock=clock,
            clients_in=load_clients,
        )

    return make


ADS_GRANTED = tuple((ch, True, "test") for ch in (ConsentChannel.CALL, ConsentChannel.TELEGRAM))


async def new_client(
    store: SqlHistoryStore,
    ext: str,
    *,
    tz: str = "Europe/Moscow",
    chat: int | None = None,
    ads: bool = True,
) -> int:
    """A client; by default one who agreed to advertising by call and in Telegram."""
    client = await store.create_client(
        ClientInput(
            external_id=ext,
            name="Клиент",
            phones=("+79161234567",),
            timezone=tz,
            ad_consents=ADS_GRANTED if ads else (),
        )
    )
    if chat is not None:
        await store.link_telegram(client.id, chat)
    return client.id


def attempt(
    client_id: int,
    key: str,
    *,
    channel: ChannelKind = ChannelKind.CALL,
    purpose: Purpose = Purpose.REORDER,
    not_before: datetime = NOON_MSK - timedelta(minutes=1),
) -> NewAttempt:
    return NewAttempt(client_id, purpose, channel, not_before, key, reason="test")
