"""The worker's parts as the composition root sees them: a service (anything with ``name`` and
``async run(stop)``), the built runtime handed to hooks and tests, and the adapters' builder.
:mod:`app.runtime` builds the core, :mod:`app.wiring` the adapters; both speak these types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.health import HealthServer
from crm_sync.history.store import SqlHistoryStore
from outreach.late_outcomes import LateOutcomes
from outreach.registry import WorkerRegistry
from povtor.domain import ChannelKind
from povtor.health import HealthBoard
from povtor.ports import Channel, OutreachControl
from povtor.settings import Settings


class Service(Protocol):
    """A long-running part of the worker; returns soon after ``stop`` is set."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class FnService:
    name: str
    fn: Callable[[asyncio.Event], Awaitable[None]]

    async def run(self, stop: asyncio.Event) -> None:
        await self.fn(stop)


@dataclass
class Runtime:
    """What `povtor run` built: handed to hooks and tests."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: SqlHistoryStore
    outcome_sink: LateOutcomes
    registry: CollectorRegistry
    worker_id: str
    workers: WorkerRegistry  # this worker's heartbeat; finds dead workers' leftovers
    services: list[Service] = field(default_factory=list)
    health: HealthServer | None = None
    board: HealthBoard = field(default_factory=HealthBoard)  # components' trouble, on /healthz
    outreach: OutreachControl | None = None  # for the dashboard's outreach page
    # called after every planning pass (the stored reports are refreshed after each)
    after_planning: list[Callable[[], None]] = field(default_factory=list)


class Adapters(Protocol):
    """Builds the channels and services of the adapters once the core is up."""

    async def __call__(
        self, stack: AsyncExitStack, rt: Runtime
    ) -> tuple[dict[ChannelKind, Channel], list[Service]]: ...
