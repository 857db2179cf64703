"""Telegram bot throughput through the fake Bot API server (real HTTP on 127.0.0.1).

    .venv/bin/python scripts/bench_bot.py [--reminders 10000] [--presses 5000]
                                          [--backends sqlite postgres] [--json]

Outbound: N reminders to N linked chats through ``TelegramChannel.execute`` (50 at a time, as
the outreach engine would call it) with the worker's shared rate limiter at 30 msg/s. Reported
from the fake server's own receive timestamps: achieved rate, the most messages in any 1 s
window, lost and duplicated reminders, outbox statuses.

Inbound: P button presses (a mix of the three reminder buttons) pushed at once to the fake's
update queue; the bot long-polls them and handles each with its store writes (update id,
press, timeline event, a task for "repeat", the late outcome). Measured until every press
has been answered and written; the reminders behind them are sent first with the rate limit
lifted (seeding, not measured).

The fake server runs on its own event loop in a thread so its timestamps do not depend on
the bot's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import drop_database, fresh_database  # noqa: E402

from bot.service import BotService  # noqa: E402
from bot.tables import BotPressRow  # noqa: E402
from crm_sync.store import SqlHistoryStore  # noqa: E402
from crm_sync.tables import ClientRow, EventRow, OrderRow  # noqa: E402
from povtor.db import create_engine, session_factory  # noqa: E402
from povtor.domain import (  # noqa: E402
    Attempt,
    AttemptState,
    ChannelKind,
    NpsSummary,
    OutcomeKind,
    Purpose,
)
from povtor.settings import Settings, TelegramSettings  # noqa: E402
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram  # noqa: E402
from tests.fakes.telegram_user import FakeUser  # noqa: E402

T = TypeVar("T")
CHAT_BASE = 10_000_000
BUTTONS = ("Повторить заказ", "Напомнить позже", "Не нужно")


class FakeThread:
    """The fake Bot API on its own loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api: FakeTelegram | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> FakeTelegram:
        self._thread.start()
        self.api = self.call_sync(self._make())
        return self.api

    async def _make(self) -> FakeTelegram:
        api = FakeTelegram()
        await api.start()
        return api

    def call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        if self.api is not None:
            self.call_sync(self.api.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def report(self, attempt_id: int, kind: OutcomeKind, data: Any = None) -> None:
        self.count += 1


class NoReports:
    async def nps(self, start: datetime, end: datetime) -> NpsSummary:
        return NpsSummary(start, end, 0, 0, 0, 0, 0)


async def seed_clients(url: str, count: int) -> list[int]:
    """N linked clients with one order each (bulk insert; the store's API is one by one)."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ClientRow),
            [
                {
                    "external_id": f"B{i}",
                    "name": f"Клиент {i}",
                    "timezone": "Europe/Moscow",
                    "telegram_chat_id": CHAT_BASE + i,
                    "telegram_reachable": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
        ids = list((await conn.execute(select(ClientRow.id).order_by(ClientRow.id))).scalars())
        await conn.execute(
            insert(OrderRow),
            [
                {
                    "external_id": f"O{cid}",
                    "client_id": cid,
                    "placed_at": now,
                    "amount": Decimal("1990"),
                    "currency": "RUB",
                    "items": [{"name": "Кофе в зёрнах 1 кг", "quantity": "1"}],
                    "created_at": now,
                    "updated_at": now,
                }
                for cid in ids
            ],
        )
    await engine.dispose()
    return ids


def settings_for(url: str, fake: FakeTelegram, data_dir: Path, *, limited: bool) -> Settings:
    telegram = TelegramSettings(
        bot_token=TOKEN,
        bot_username=BOT_USERNAME,
        api_base=fake.base_url,
        polling_timeout_s=2,
        global_rate=30.0 if limited else 1e6,
        per_chat_rate=1.0 if limited else 1e6,
    )
    return Settings(data_dir=data_dir, database_url=url, secret_key="bench", telegram=telegram)


async def send_reminders(service: BotService, store: SqlHistoryStore, ids: list[int]) -> float:
    gate = asyncio.Semaphore(50)
    counter = itertools.count(1)

    async def one(client_id: int) -> None:
        async with gate:
            client = await store.get_client(client_id)
            n = next(counter)
            attempt = Attempt(
                id=n,
                client_id=client_id,
                purpose=Purpose.REORDER,
                channel=ChannelKind.TELEGRAM,
                state=AttemptState.IN_PROGRESS,
                not_before=datetime.now(UTC),
                idempotency_key=f"bench:{n}",
            )
            outcome = await service.channel.execute(attempt, client)
            if outcome.kind is not OutcomeKind.DELIVERED:
                raise RuntimeError(f"reminder not delivered: {outcome}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    return time.perf_counter() - started


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def outbound(backend: str, count: int, folder: Path) -> dict[str, Any]:
    url = await asyncio.to_thread(fresh_database, backend, folder)
    fake_thread = FakeThread()
    fake = fake_thread.start()
    engine = create_engine(url)
    try:
        ids = await seed_clients(url, count)
        for i in range(count):
            fake.add_chat(CHAT_BASE + i)
        store = SqlHistoryStore(session_factory(engine))
        settings = settings_for(url, fake, folder, limited=True)
        service = BotService(
            settings, store, NoReports(), NullSink(), sessions=session_factory(engine)
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(service.run(stop))  # polling too, as in production
        seconds = await send_reminders(service, store, ids)
        stop.set()
        await worker
        sent = sorted(fake.sent, key=lambda s: s.received_at)
        times = [s.received_at for s in sent]
        per_chat = Counter(s.chat_id for s in sent)
        statuses = await service.deps.repo.outbox_counts()
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return {
            "backend": backend,
            "reminders": count,
            "seconds": round(seconds, 1),
            "rate_per_s": round((len(times) - 1) / span, 2) if span else None,
            "max_in_any_1s_window": max_in_window(times),
            "lost": count - len(per_chat),
            "duplicated": sum(n - 1 for n in per_chat.values() if n > 1),
            "outbox": statuses,
        }
    finally:
        await engine.dispose()
        fake_thread.stop()
        await asyncio.to_thread(drop_database, url)


async def inbound(backend: str, presses: int, folder: Path) -> dict[str, Any]:
    url = await asyncio.to_thread(fresh_database, backend, folder)
    fake_thread = FakeThread()
    fake = fake_thread.start()
    engine = create_engine(url, pool_size=20)
    try:
        ids = await seed_clients(url, presses)
        users = [FakeUser(fake, CHAT_BASE + i) for i in range(presses)]
        store = SqlHistoryStore(session_factory(engine))
        sink = NullSink()
        seeding = settings_for(url, fake, folder, limited=False)
        seeder = BotService(seeding, store, NoReports(), sink, sessions=session_factory(engine))
        await send_reminders(seeder, store, ids)
        await seeder.close()

        service = BotService(seeding, store, NoReports(), sink, sessions=session_factory(engine))
        stop = asyncio.Event()
        worker = asyncio.create_task(service.run(stop))
        by_chat = {s.chat_id: s for s in fake.sent}

        async def push_all() -> list[str]:
            return [
                await user.press(by_chat[user.id], BUTTONS[i % 3]) for i, user in enumerate(users)
            ]

        started = time.perf_counter()
        cpu_started = time.process_time()
        query_ids = await fake_thread.call(push_all())
        await fake_thread.call(
            fake.wait_for(lambda: fake.answered_count >= len(query_ids), within=600)
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        stop.set()
        await worker
        async with engine.connect() as conn:
            press_rows = await conn.scalar(select(func.count()).select_from(BotPressRow))
            events = await conn.scalar(
                select(func.count()).select_from(EventRow).where(EventRow.kind == "message_in")
            )
        return {
            "backend": backend,
            "presses": presses,
            "seconds": round(seconds, 2),
            "updates_per_s": round(presses / seconds, 1),
            # this process's CPU (bot and the fake server's thread) per update: the rate one
            # free core could sustain is 1000 / this
            "cpu_ms_per_update": round(cpu * 1000 / presses, 2),
            "presses_recorded": press_rows,
            "timeline_events": events,
            "late_outcomes": sink.count,
        }
    finally:
        await engine.dispose()
        fake_thread.stop()
        await asyncio.to_thread(drop_database, url)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--presses", type=int, default=5_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--outbound-backend", default="sqlite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"inbound": []}
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
        folder = Path(tmp)
        if args.reminders:
            results["outbound"] = await outbound(args.outbound_backend, args.reminders, folder)
            if not args.json:
                print("outbound", results["outbound"], flush=True)
        for backend in args.backends if args.presses else []:
            result = await inbound(backend, args.presses, folder)
            results["inbound"].append(result)
            if not args.json:
                print("inbound", result, flush=True)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
