"""Telegram bot throughput through the fake Bot API server (real HTTP on 127.0.0.1).

    .venv/bin/python scripts/bench_bot.py [--reminders 10000] [--presses 5000]
                                          [--backends sqlite postgres] [--json] [--rounds 3]
                                          [--loop uvloop|asyncio]

Outbound: N reminders to N linked chats through ``TelegramChannel.execute`` (50 at a time, as
the outreach engine would call it) with the worker's shared rate limiter at 30 msg/s. Reported
from the fake server's own receive timestamps: achieved rate, the most messages in any 1 s
window, lost and duplicated reminders, outbox statuses.

Inbound: P button presses (a mix of the three reminder buttons) pushed at once to the fake's
update queue; the bot long-polls them and handles each with its store writes (update id,
press, timeline event, a task for "repeat", the late outcome). Measured until every press
has been answered and written; the reminders behind them are sent first with the rate limit
lifted (seeding, not measured). The anchor, alternately with the bot for ``--rounds`` rounds per
backend: the fake Bot API's own serving rate, the same presses long-polled by a bot that only
acknowledges (``getUpdates`` and ``answerCallbackQuery`` over aiohttp, nothing stored). Printed
first: the bot's update rate as a share of the anchor's (median of the rounds) and the machine's
load; then the ``inbound`` line of the median round.

The bot runs on the event loop ``povtor run`` uses (uvloop where installed); ``--loop asyncio``
measures it on asyncio's own selector loop. The fake server (and the simulated users) runs in a
child process of its own, as Telegram is
not in the bot's process: its receive timestamps do not depend on the bot's loop, and its CPU
and GIL are not the bot's. Figures are the bot's own CPU per update and, apart, the fake's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from bench_common import (  # noqa: E402
    Comparison,
    LoadWatch,
    add_loop_option,
    alternate_async,
    drop_database,
    fresh_database,
    report_first,
)

from app import event_loop  # noqa: E402
from app.runtime import settle_heap  # noqa: E402
from bot.service import BotService  # noqa: E402
from bot.tables import BotPressRow  # noqa: E402
from crm_sync.history.store import SqlHistoryStore  # noqa: E402
from crm_sync.history.tables import ClientRow, EventRow, OrderRow  # noqa: E402
from outreach.late_outcomes import LateOutcomes  # noqa: E402
from outreach.tables import AttemptOutcomeRow, AttemptRow  # noqa: E402
from povtor.db import create_engine, session_factory  # noqa: E402
from povtor.domain import (  # noqa: E402
    Attempt,
    AttemptState,
    ChannelKind,
    NpsSummary,
    OutcomeKind,
    Purpose,
)
from povtor.ports import LateOutcome  # noqa: E402
from povtor.settings import Settings, TelegramSettings  # noqa: E402
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram  # noqa: E402
from tests.fakes.telegram_user import FakeUser  # noqa: E402

T = TypeVar("T")
CHAT_BASE = 10_000_000
BUTTONS = ("Повторить заказ", "Напомнить позже", "Не нужно")


class FakeProcess:
    """The fake Bot API in a child process of its own, as Telegram is not in the bot's process:
    its CPU and its GIL are not the bot's. Driven over a pipe, one command at a time."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_fake_main, args=(child,), daemon=True)

    async def start(self) -> str:
        self._process.start()
        base_url: str = await asyncio.to_thread(self._conn.recv)
        return base_url

    async def call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        ok, result = await asyncio.to_thread(self._conn.recv)
        if not ok:
            raise RuntimeError(f"fake Bot API: {name} failed: {result}")
        return result

    async def stop(self) -> None:
        if self._process.is_alive():
            await self.call("stop")
        await asyncio.to_thread(self._process.join, 10)


def _fake_main(conn: Connection) -> None:
    asyncio.run(_fake_serve(conn))


async def _fake_serve(conn: Connection) -> None:
    """The child's side: the fake server and the simulated users, commanded by the parent."""
    fake = FakeTelegram()
    conn.send(await fake.start())

    async def add_chats(base: int, count: int) -> None:
        for i in range(count):
            fake.add_chat(base + i)

    async def sent() -> list[tuple[int, float]]:
        return [(s.chat_id, s.received_at) for s in fake.sent]

    async def press_all(base: int, count: int) -> int:
        by_chat = {s.chat_id: s for s in fake.sent}
        users = [FakeUser(fake, base + i) for i in range(count)]
        for i, user in enumerate(users):
            await user.press(by_chat[user.id], BUTTONS[i % 3])
        return count

    async def wait_answered(count: int, within: float) -> None:
        await fake.wait_for(lambda: fake.answered_count >= count, within=within)

    async def cpu() -> float:
        return time.process_time()

    commands = {
        "add_chats": add_chats,
        "sent": sent,
        "press_all": press_all,
        "wait_answered": wait_answered,
        "cpu": cpu,
    }
    while True:
        name, args = await asyncio.to_thread(conn.recv)
        if name == "stop":
            await fake.stop()
            conn.send((True, None))
            return
        try:
            conn.send((True, await commands[name](*args)))
        except Exception as err:  # reported to the parent, which raises
            conn.send((False, repr(err)))


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def report(self, attempt_id: int, kind: OutcomeKind, data: Any = None) -> None:
        self.count += 1

    async def report_many(self, outcomes: Sequence[LateOutcome]) -> set[int]:
        self.count += len(outcomes)
        return set()


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
        # the attempts the reminders answer (the n-th client's is attempt n): a press is
        # reported to the real late-outcome sink, which updates the attempt
        await conn.execute(
            insert(AttemptRow),
            [
                {
                    "id": n,
                    "client_id": cid,
                    "purpose": Purpose.REORDER.value,
                    "channel": ChannelKind.TELEGRAM.value,
                    "state": AttemptState.DONE.value,
                    "not_before": now,
                    "idempotency_key": f"bench:{n}",
                    "created_at": now,
                    "updated_at": now,
                }
                for n, cid in enumerate(ids, 1)
            ],
        )
    await engine.dispose()
    return ids


def settings_for(url: str, api_base: str, data_dir: Path, *, limited: bool) -> Settings:
    telegram = TelegramSettings(
        bot_token=TOKEN,
        bot_username=BOT_USERNAME,
        api_base=api_base,
        polling_timeout_s=2,
        global_rate=30.0 if limited else 1e6,
        per_chat_rate=1.0 if limited else 1e6,
    )
    return Settings(data_dir=data_dir, database_url=url, secret_key="bench", telegram=telegram)


async def send_reminders(service: BotService, store: SqlHistoryStore, ids: list[int]) -> float:
    gate = asyncio.Semaphore(50)

    async def one(n: int, client_id: int) -> None:
        async with gate:
            client = await store.get_client(client_id)
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
    await asyncio.gather(*(one(n, cid) for n, cid in enumerate(ids, 1)))
    return time.perf_counter() - started


def _database_name() -> str:
    """Each run's own throwaway database, named for this benchmark."""
    return f"bench_bot_{uuid.uuid4().hex[:8]}"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def outbound(backend: str, count: int, folder: Path) -> dict[str, Any]:
    url = await asyncio.to_thread(fresh_database, backend, folder, _database_name())
    fake = FakeProcess()
    api_base = await fake.start()
    engine = create_engine(url)
    try:
        ids = await seed_clients(url, count)
        await fake.call("add_chats", CHAT_BASE, count)
        store = SqlHistoryStore(session_factory(engine))
        settings = settings_for(url, api_base, folder, limited=True)
        service = BotService(
            settings, store, NoReports(), NullSink(), sessions=session_factory(engine)
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(service.run(stop))  # polling too, as in production
        cpu_started = time.process_time()
        seconds = await send_reminders(service, store, ids)
        cpu = time.process_time() - cpu_started
        stop.set()
        await worker
        sent = sorted(await fake.call("sent"), key=lambda s: s[1])
        times = [received_at for _, received_at in sent]
        per_chat = Counter(chat_id for chat_id, _ in sent)
        statuses = await service.dispatcher["outbox"].outbox_counts()
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
            # the bot's own CPU per reminder (this process, threads included)
            "bot_cpu_ms_per_message": round(cpu * 1000 / count, 2),
        }
    finally:
        await engine.dispose()
        await fake.stop()
        await asyncio.to_thread(drop_database, url)


@contextlib.asynccontextmanager
async def reminded(backend: str, presses: int, folder: Path) -> AsyncIterator[Any]:
    """A fresh database, the fake Bot API, and a reminder sent to each of ``presses`` chats
    (the rate limit lifted: seeding, not measured)."""
    url = await asyncio.to_thread(fresh_database, backend, folder, _database_name())
    fake = FakeProcess()
    api_base = await fake.start()
    engine = create_engine(url, pool_size=20)
    try:
        ids = await seed_clients(url, presses)
        await fake.call("add_chats", CHAT_BASE, presses)
        store = SqlHistoryStore(session_factory(engine))
        seeding = settings_for(url, api_base, folder, limited=False)
        seeder = BotService(
            seeding, store, NoReports(), NullSink(), sessions=session_factory(engine)
        )
        await send_reminders(seeder, store, ids)
        await seeder.close()
        yield url, fake, engine, store, seeding
    finally:
        await engine.dispose()
        await fake.stop()
        await asyncio.to_thread(drop_database, url)


async def inbound(backend: str, presses: int, folder: Path) -> dict[str, Any]:
    async with reminded(backend, presses, folder) as (_url, fake, engine, store, seeding):
        outcomes = LateOutcomes(session_factory(engine))
        service = BotService(
            seeding, store, NoReports(), outcomes, sessions=session_factory(engine)
        )
        thresholds = gc.get_threshold()
        settle_heap()  # as `povtor run` does once the worker is built
        stop = asyncio.Event()
        worker = asyncio.create_task(service.run(stop))
        fake_cpu_started = await fake.call("cpu")
        started = time.perf_counter()
        cpu_started = time.process_time()
        await fake.call("press_all", CHAT_BASE, presses)
        await fake.call("wait_answered", presses, 600.0)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        fake_cpu = await fake.call("cpu") - fake_cpu_started
        stop.set()
        await worker
        gc.set_threshold(*thresholds)  # the anchor's rounds keep Python's default
        async with engine.connect() as conn:
            press_rows = await conn.scalar(select(func.count()).select_from(BotPressRow))
            events = await conn.scalar(
                select(func.count()).select_from(EventRow).where(EventRow.kind == "message_in")
            )
            late_outcomes = await conn.scalar(select(func.count()).select_from(AttemptOutcomeRow))
        return {
            "backend": backend,
            "presses": presses,
            "seconds": round(seconds, 2),
            "updates_per_s": round(presses / seconds, 1),
            # the bot's own CPU per update (this process; the database server's is not in it):
            # the rate one free core could sustain is 1000 / this
            "bot_cpu_ms_per_update": round(cpu * 1000 / presses, 2),
            "fake_api_cpu_ms_per_update": round(fake_cpu * 1000 / presses, 2),
            "presses_recorded": press_rows,
            "timeline_events": events,
            "late_outcomes": late_outcomes,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }


async def acknowledge(api_base: str, presses: int) -> None:
    """A bot that only acknowledges: long-polls and answers every callback query."""
    api = f"{api_base}/bot{TOKEN}"
    answered, offset = 0, 0
    async with aiohttp.ClientSession() as http:

        async def answer(query_id: str) -> None:
            async with http.post(
                f"{api}/answerCallbackQuery", json={"callback_query_id": query_id}
            ) as response:
                if not (await response.json())["ok"]:
                    raise RuntimeError("answerCallbackQuery refused")

        while answered < presses:
            async with http.post(
                f"{api}/getUpdates", json={"offset": offset, "limit": 100, "timeout": 2}
            ) as response:
                updates = (await response.json())["result"]
            if updates:
                offset = updates[-1]["update_id"] + 1
            queries = [u["callback_query"]["id"] for u in updates if "callback_query" in u]
            await asyncio.gather(*(answer(q) for q in queries))
            answered += len(queries)


async def acknowledge_only(presses: int) -> float:
    """The anchor: seconds for the fake to serve ``presses`` presses to an acknowledging bot.
    The reminders are sent straight to the fake (same buttons; no database: seeding only)."""
    fake = FakeProcess()
    api_base = await fake.start()
    try:
        await fake.call("add_chats", CHAT_BASE, presses)
        gate = asyncio.Semaphore(50)
        keyboard = {"inline_keyboard": [[{"text": b, "callback_data": f"b{i}"}]
                                        for i, b in enumerate(BUTTONS)]}  # fmt: skip
        async with aiohttp.ClientSession() as http:

            async def remind(chat_id: int) -> None:
                body = {"chat_id": chat_id, "text": "reminder", "reply_markup": keyboard}
                async with gate, http.post(f"{api_base}/bot{TOKEN}/sendMessage", json=body) as r:
                    if not (await r.json())["ok"]:
                        raise RuntimeError("sendMessage refused")

            await asyncio.gather(*(remind(CHAT_BASE + i) for i in range(presses)))
        started = time.perf_counter()
        await fake.call("press_all", CHAT_BASE, presses)
        await acknowledge(api_base, presses)
        await fake.call("wait_answered", presses, 600.0)
        return time.perf_counter() - started
    finally:
        await fake.stop()


async def compare_inbound(
    backend: str, args: argparse.Namespace, folder: Path, load: LoadWatch
) -> tuple[Comparison, dict[str, Any]]:
    """The bot against the acknowledging anchor, alternately; the median round's result."""
    rounds: list[dict[str, Any]] = []

    async def subject() -> float:
        rounds.append(await inbound(backend, args.presses, folder))
        return float(rounds[-1]["seconds"])

    async def anchor() -> float:
        return await acknowledge_only(args.presses)

    pairs = await alternate_async(anchor, subject, args.rounds, load)
    comparison = Comparison(
        f"bot inbound updates/s, {backend}", "fake API serving an ack-only bot", pairs, speed=True
    )
    middle = statistics.median_low(r["seconds"] for r in rounds)
    return comparison, next(r for r in rounds if r["seconds"] == middle)


async def main(args: argparse.Namespace) -> None:
    load = LoadWatch()
    comparisons: list[Comparison] = []
    lines: list[str] = []
    results: dict[str, Any] = {"inbound": []}
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
        folder = Path(tmp)
        if args.reminders:
            results["outbound"] = await outbound(args.outbound_backend, args.reminders, folder)
            lines.append(f"outbound {results['outbound']}")
        for backend in args.backends if args.presses else []:
            comparison, result = await compare_inbound(backend, args, folder, load)
            comparisons.append(comparison)
            results["inbound"].append(result)
            lines.append(f"inbound {result}")
    if args.json:
        ratios = [
            {"line": c.line(), "median_ratio": round(c.median(), 3), "rounds": c.ratios()}
            for c in comparisons
        ]
        load_line = load.line()
        print(json.dumps({"ratios": ratios, "load": load_line, **results}, ensure_ascii=False,
                         indent=2))  # fmt: skip
    else:
        report_first(comparisons, load, lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--presses", type=int, default=5_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--outbound-backend", default="sqlite")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="anchor/bot rounds per backend")
    add_loop_option(parser, "bot")
    parsed = parser.parse_args()
    event_loop.run(main(parsed), parsed.loop)
