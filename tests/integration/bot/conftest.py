"""The bot against the fake Telegram Bot API over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.tables  # noqa: F401  (the bot's tables are emptied between tests)
from bot.service import BotService
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.db import session_factory
from povtor.domain import Client, NpsSummary, OrderItem, OutcomeKind
from povtor.ports import LateOutcome
from povtor.settings import Settings, TelegramSettings
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram

pytestmark = pytest.mark.telegram


class RecordingSink:
    """An OutcomeSink that remembers every late outcome (the outreach engine's role)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, OutcomeKind, dict[str, Any]]] = []
        self._changed = asyncio.Condition()

    async def report(
        self, attempt_id: int, kind: OutcomeKind, data: Mapping[str, Any] | None = None
    ) -> None:
        async with self._changed:
            self.reports.append((attempt_id, kind, dict(data or {})))
            self._changed.notify_all()

    async def report_many(self, outcomes: Sequence[LateOutcome]) -> set[int]:
        async with self._changed:
            for o in outcomes:
                self.reports.append((o.attempt_id, o.kind, dict(o.data or {})))
            self._changed.notify_all()
        return set()

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.reports) >= count), within
            )


class FixedReports:
    def __init__(self) -> None:
        self.asked: list[tuple[datetime, datetime]] = []

    async def nps(self, start: datetime, end: datetime) -> NpsSummary:
        self.asked.append((start, end))
        return NpsSummary(
            start, end, promoters=5, passives=3, detractors=2, responses=10, asked=20
        )


@pytest.fixture(autouse=True)
def _database_first(db_url: str) -> str:
    """Every test here runs on both databases; set the database up before async fixtures."""
    return db_url


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def bot_settings(fake_tg: FakeTelegram, tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_key="test-secret-key",
        telegram=TelegramSettings(
            bot_token=TOKEN,
            bot_username=BOT_USERNAME,
            api_base=fake_tg.base_url,
            polling_timeout_s=5,
            retry_backoff_s=0.01,
            per_chat_rate=4.0,  # keeps conversations quick; the limits are tested on their own
        ),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook_settings(bot_settings: Settings) -> Settings:
    port = _free_port()
    telegram = bot_settings.telegram.model_copy(
        update={
            "mode": "webhook",
            "webhook_host": "127.0.0.1",
            "webhook_port": port,
            "webhook_url": f"http://127.0.0.1:{port}/telegram/webhook",
            "webhook_secret": SecretStr("s3cret-Token_1"),
        }
    )
    return bot_settings.model_copy(update={"telegram": telegram})


@dataclass
class Running:
    service: BotService
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def start_bot(
    bot_settings: Settings, store: SqlHistoryStore, engine: AsyncEngine, sink: RecordingSink
) -> AsyncIterator[Callable[..., Any]]:
    """Start a bot worker (several times for restart tests); all are stopped at the end."""
    started: list[Running] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> Running:
        service = BotService(
            settings or bot_settings,
            store,
            FixedReports(),
            sink,
            sessions=session_factory(engine),
            **kwargs,
        )
        stop = asyncio.Event()
        running = Running(service, stop, asyncio.create_task(service.run(stop)))
        started.append(running)
        return running

    yield start
    for running in started:
        if not running.task.done():
            await running.shutdown()


@pytest.fixture
async def running_bot(start_bot: Callable[..., Any]) -> Running:
    running: Running = await start_bot()
    return running


async def make_client(
    store: SqlHistoryStore,
    external_id: str = "C-1",
    *,
    phone: str = "+79161234567",
    name: str = "Анна",
    order: bool = True,
) -> Client:
    client = await store.create_client(
        ClientInput(external_id=external_id, name=name, phones=(phone,))
    )
    if order:
        await store.add_order(
            OrderInput(
                external_id=f"O-{external_id}",
                client_external_id=external_id,
                placed_at=datetime(2025, 3, 14, 10, 0).astimezone(),
                amount=Decimal("2490.00"),
                items=(OrderItem(name="Кофе в зёрнах 1 кг", quantity=Decimal(2)),),
            )
        )
    return client
