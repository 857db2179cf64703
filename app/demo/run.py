"""`povtor demo`: the real worker against local stand-ins, with time compressed.

It makes a fresh store in its folder (the generator's business plus a cast of named clients),
starts the Bot API emulator with the simulated clients and the sandbox page, the SIPp phones,
then `povtor run` as a child process in demo mode, and shows what happens until Ctrl-C or the
given number of seconds. A worker that dies is started again (the dispatcher's leases make sure
nobody is contacted twice). Everything it started is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from rich.console import Console
from rich.live import Live
from sqlalchemy import text

from app.demo.children import die_with_parent
from app.demo.clients import Feed, SimulatedPeople, generic_script, manager_script
from app.demo.phones import DemoPhones
from app.demo.progress import Baseline, render, snapshot
from app.demo.safety import demo_environment
from app.demo.world import (
    DAY_HOURS,
    MANAGER_CHAT,
    add_cast,
    deliver_live_orders,
    zone_at_hours,
)
from app.sandbox.page import SandboxPage
from app.sandbox.telegram_api import BOT_USERNAME, TOKEN, BotApiEmulator
from app.sandbox.telegram_user import button_texts
from crm_sync.history.store import SqlHistoryStore
from povtor.clock import FastClock
from povtor.db import create_engine, session_factory
from povtor.errors import ConfigError
from povtor.lifecycle import wait_or_stop

MARKER = ".povtor-demo"
LOGIN, PASSWORD = "demo", "water-sandbox-tuesday"
SECRET = "povtor-demo-signing-key-not-secret"
LIVE_DELIVERY_AFTER_S = 15.0
MAX_RESTARTS = 5
MOSCOW = ZoneInfo("Europe/Moscow")
# the demo's clock runs 120 times faster: two minutes show four hours, so a client whose
# morning is near is reached within the run (contact hours follow this clock)
DEFAULT_CLOCK_SPEED = 120


@dataclass
class DemoOptions:
    folder: Path = Path("data/demo")
    seconds: float | None = None
    clients: int = 40
    seed: int = 1
    dashboard_port: int = 8080
    sandbox_port: int = 8081
    metrics_port: int = 9108
    models_dir: Path = Path("data/models")
    clock_start: datetime | None = None  # what the demo's clock shows at the start (default: now)
    clock_speed: int = DEFAULT_CLOCK_SPEED


@dataclass
class DemoState:
    restarts: int = 0
    worker_pid: int | None = None
    notes: list[str] = field(default_factory=list)


def demo_settings(
    opts: DemoOptions, sandbox: str, phones: str, model: Path | None, start: datetime
) -> dict[str, str]:
    """The worker's whole configuration: loopback stand-ins, time compressed."""
    folder = opts.folder.resolve()
    env = {
        # contact hours follow the demo's fast clock; it shows START from the moment the
        # first worker runs (POVTOR_DEMO_CLOCK_ORIGIN, handed to each worker with its go)
        "POVTOR_DEMO_CLOCK_START": start.isoformat(),
        "POVTOR_DEMO_CLOCK_SPEED": str(opts.clock_speed),
        "POVTOR_DATA_DIR": str(folder),
        "POVTOR_SECRET_KEY": SECRET,
        "POVTOR_DASHBOARD_HOST": "127.0.0.1",
        "POVTOR_DASHBOARD_PORT": str(opts.dashboard_port),
        "POVTOR_METRICS_HOST": "127.0.0.1",
        "POVTOR_METRICS_PORT": str(opts.metrics_port),
        "POVTOR_CRM_KIND": "none",
        # Telegram: the emulator; an unanswered message falls back to a call after 25 s
        "POVTOR_TELEGRAM_BOT_TOKEN": TOKEN,
        "POVTOR_TELEGRAM_BOT_USERNAME": BOT_USERNAME,
        "POVTOR_TELEGRAM_API_BASE": sandbox,
        "POVTOR_TELEGRAM_MODE": "polling",
        "POVTOR_TELEGRAM_POLLING_TIMEOUT_S": "5",
        "POVTOR_TELEGRAM_ANSWER_TIMEOUT_S": "25",
        "POVTOR_TELEGRAM_NPS_REASON_WAIT_S": "40",
        "POVTOR_TELEGRAM_COMPANY_NAME": "«Чистая вода» (демо)",
        # phones: SIPp on loopback
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": phones,
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": "0",
        "POVTOR_SIP_RTP_PORT_MIN": "0",
        "POVTOR_SIP_CALLER_ID": "demo",
        "POVTOR_SIP_RING_TIMEOUT_S": "8",
        "POVTOR_SIP_RTP_TIMEOUT_S": "0",
        "POVTOR_CALL_MAX_CALL_S": "90",
        # the day in two minutes: plans every 5 s, retries within a minute, NPS right after
        # delivery, a few calls and messages a day allowed, short leases after a crash
        "POVTOR_OUTREACH_PLAN_INTERVAL_S": "5",
        "POVTOR_OUTREACH_POLL_INTERVAL_S": "0.5",
        "POVTOR_OUTREACH_CONCURRENCY": "40",
        "POVTOR_OUTREACH_LEASE_S": "15",
        "POVTOR_OUTREACH_HEARTBEAT_S": "2",
        "POVTOR_OUTREACH_DRAIN_TIMEOUT_S": "15",
        "POVTOR_OUTREACH_NPS_AFTER_DELIVERY_DAYS": "0",
        "POVTOR_OUTREACH_RETRY_BUSY": "0.25:3",
        "POVTOR_OUTREACH_RETRY_NO_ANSWER": "0.4:2",
        "POVTOR_OUTREACH_RETRY_HUNG_UP_EARLY": "0.5:2",
        "POVTOR_OUTREACH_RETRY_FAILED": "0.25:2",
        "POVTOR_OUTREACH_RETRY_INTERRUPTED": "0.1:3",
        "POVTOR_OUTREACH_CALLS_PER_DAY": "4",
        "POVTOR_OUTREACH_CALLS_PER_WEEK": "6",
        "POVTOR_OUTREACH_CALLS_PER_MONTH": "10",
        "POVTOR_OUTREACH_MESSAGES_PER_DAY": "6",
        "POVTOR_OUTREACH_MESSAGES_PER_WEEK": "10",
        "POVTOR_OUTREACH_MESSAGES_PER_MONTH": "20",
        "POVTOR_OUTREACH_HOLIDAY_CALLS": "true",
        "POVTOR_OUTREACH_APPROVAL_THRESHOLD": "100000",  # no first-run approval in the demo
        # two minutes stand for days: the business-wide pace (60 calls an hour by default)
        # would let two calls out in the whole demo
        "POVTOR_OUTREACH_PACING": "call/*=6000/h,100000/d; telegram/*=6000/h,100000/d",
        "POVTOR_ASR_SCAN_INTERVAL_S": "5",
        "POVTOR_ASR_WORKERS": "1",
        "POVTOR_RECORDINGS_FLUSH_INTERVAL_S": "1",
    }
    if model is None:
        env.update({"POVTOR_CALL_LIVE_ASR": "false", "POVTOR_ASR_BACKGROUND": "false"})
        env["POVTOR_ASR_MODEL"] = str(folder / "no-model")
    else:
        env["POVTOR_ASR_MODEL"] = str(model)
    return env


def russian_model(models_dir: Path) -> Path | None:
    from povtor.errors import ModelError
    from voice.models import resolve_model

    for name in ("ru-small", "ru"):
        with contextlib.suppress(ModelError):
            return resolve_model(name, models_dir.resolve())
    return None


def fresh_folder(folder: Path) -> None:
    """Empty the demo's folder; refuses a folder the demo did not make. The synthesised
    prompts are kept: they are a cache (the same words give the same file), not state."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise ConfigError(f"{folder} is not empty and was not made by `povtor demo`")
    prompts = folder / "prompts"
    kept = folder.with_name(f".{folder.name}-prompts")
    shutil.rmtree(kept, ignore_errors=True)
    if prompts.is_dir():
        prompts.rename(kept)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kept.is_dir():
        kept.rename(prompts)
    (folder / MARKER).write_text("made by `povtor demo`; emptied by its next run\n")


class Worker:
    """`povtor run` in demo mode as a child; started again when it dies.

    A worker's start is mostly importing its code, so a spare one is kept ready (imported,
    waiting for its go) once the running one serves its dashboard: a worker that dies is
    replaced within seconds, not after another import."""

    def __init__(
        self, env: dict[str, str], folder: Path, state: DemoState, feed: Feed, up_port: int
    ) -> None:
        self.env, self.folder, self.state, self.feed = env, folder, state, feed
        self.up_port = up_port  # the worker's dashboard: listening means it is up
        self.log_path = folder / "worker.log"
        self._spare: asyncio.subprocess.Process | None = None
        self.origin: datetime | None = None  # the demo's clock starts when the first one runs
        self.running = asyncio.Event()  # a worker was told to run

    async def _spawn(self, log: Any) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.demo.worker_start", env=self.env,
            cwd=self.folder, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker
            preexec_fn=die_with_parent(signal.SIGUSR1),  # the demo's death ends its group
        )  # fmt: skip

    async def _next(self, log: Any) -> asyncio.subprocess.Process:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            return spare
        return await self._spawn(log)

    async def _go(self, process: asyncio.subprocess.Process, ready: asyncio.Event) -> bool:
        """Tell a worker that has imported everything to run, once the store is ready; True
        once it is up (it serves its dashboard), False if it died first."""
        await ready.wait()
        assert process.stdin is not None
        assert process.stdout is not None
        if not await process.stdout.readline():  # "imported" (it died first: nothing)
            return False
        self.origin = self.origin or datetime.now(UTC)
        with contextlib.suppress(ConnectionError):  # it died meanwhile: the run loop sees that
            process.stdin.write(f"go {self.origin.isoformat()}\n".encode())
            await process.stdin.drain()
            process.stdin.close()
        self.running.set()
        while process.returncode is None:  # the dashboard listening is the only sign it is up
            if _listening(self.up_port):
                return True
            await asyncio.sleep(0.5)
        return False

    async def run(self, stop: asyncio.Event, ready: asyncio.Event) -> None:
        """Start the worker (it imports what it runs at once, and runs once ``ready`` is set:
        the store is prepared meanwhile) and keep it running until ``stop``."""
        with self.log_path.open("ab") as log:
            try:
                await self._keep_running(stop, ready, log)
            finally:
                await asyncio.shield(self._drop_spare())

    async def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            spare.terminate()  # it never ran: nothing to drain
            await spare.wait()

    async def _keep_running(self, stop: asyncio.Event, ready: asyncio.Event, log: Any) -> None:
        while not stop.is_set():
            process = await self._next(log)
            self.state.worker_pid = process.pid
            (self.folder / "worker.pid").write_text(f"{process.pid}\n")
            waiter = asyncio.ensure_future(process.wait())
            stopping = asyncio.ensure_future(stop.wait())
            go = asyncio.ensure_future(self._go(process, ready))
            try:
                await asyncio.wait({waiter, stopping, go}, return_when=asyncio.FIRST_COMPLETED)
                if go.done() and not (waiter.done() or stopping.done()):
                    if go.result():  # it is up: a spare gets ready behind it
                        self._spare = self._spare or await self._spawn(log)
                    await asyncio.wait({waiter, stopping}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # the demo fails elsewhere: never leave it running
                stopping.cancel()
                go.cancel()
                await asyncio.shield(self._stop(process))
                raise
            stopping.cancel()
            go.cancel()
            if not waiter.done():
                await self._stop(process)
                return
            if process.returncode in (2, 3):  # a refusal at start: nothing to retry
                raise ConfigError(f"the worker refused to start: {self._last_lines()}")
            self.state.restarts += 1
            self.feed.add(f"воркер упал (код {process.returncode}), запускаю снова")
            if self.state.restarts > MAX_RESTARTS:
                raise ConfigError(f"the worker keeps dying: {self._last_lines()}")

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        process.send_signal(signal.SIGTERM)  # drains in-flight calls and messages
        try:
            async with asyncio.timeout(45):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def _last_lines(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _add_login(sessions: Any) -> None:
    """The dashboard's demo login (in this process: a `povtor user add` would start and import
    a whole second Python)."""
    from dashboard.passwords import Passwords
    from dashboard.roles import Role
    from dashboard.users import UserStore
    from povtor.settings import DashboardSettings

    passwords = Passwords(DashboardSettings.model_construct())  # defaults, nothing of .env
    await UserStore(sessions).create(LOGIN, await passwords.hash(PASSWORD), Role.ADMIN)


async def _sandbox(opts: DemoOptions, names: dict[int, str]) -> tuple[BotApiEmulator, str]:
    api = BotApiEmulator()
    app = web.Application()
    SandboxPage(api, names).add_routes(app)
    return api, await api.start(app, port=opts.sandbox_port)


def _dump_sandbox(api: BotApiEmulator, path: Path) -> None:
    """What the bot sent and called, for anyone checking the run afterwards."""
    body: dict[str, Any] = {
        "base_url": api.base_url,
        "sent": [
            {
                "chat_id": m.chat_id,
                "message_id": m.message_id,
                "text": m.text,
                "buttons": button_texts(m),
            }
            for m in api.sent
        ],
        "methods": [method for method, _ in api.calls],
    }
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")


async def run_demo(opts: DemoOptions, console: Console) -> DemoState:
    state = DemoState()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, terminal closed
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await _run(opts, console, state, stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return state


async def _prepare(opts: DemoOptions, url: str, shown: datetime) -> tuple[Any, list[Any], int]:
    """Schema, the generated business, the cast; returns the engine, cast and manager invite."""
    from app.migrate import upgrade_async
    from crm_sync.demo.generate import DemoSpec
    from crm_sync.demo.load import load_demo
    from crm_sync.history.store import SqlHistoryStore

    await upgrade_async(url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    await load_demo(engine, DemoSpec(clients=opts.clients, seed=opts.seed, until=now.date()))
    async with engine.begin() as conn:  # most of them where the demo's clock shows late
        # morning; a quarter stay in their own cities, where quiet hours may hold them back
        await conn.execute(
            text("UPDATE clients SET timezone = :zone WHERE id % 4 <> 0"),
            {"zone": zone_at_hours(shown, *DAY_HOURS)},
        )
    store = SqlHistoryStore(session_factory(engine))
    cast = await add_cast(store, now, shown)
    return engine, cast, 0


async def _run(opts: DemoOptions, console: Console, state: DemoState, stop: asyncio.Event) -> None:
    """Stand-ins first and the worker importing its code at once; the store is prepared
    meanwhile, then the worker is told to run."""
    folder = opts.folder
    fresh_folder(folder)
    url = f"sqlite+aiosqlite:///{(folder / 'povtor.db').resolve()}"
    console.print(f"[bold]Демо «Повтор»[/]: новый магазин в {folder} ...")
    start = opts.clock_start or datetime.now(UTC)  # what the demo's clock shows as it begins
    model = russian_model(opts.models_dir)
    names: dict[int, str] = {MANAGER_CHAT: "Менеджер"}  # the cast joins once it exists
    api, sandbox = await _sandbox(opts, names)
    feed = Feed()
    engine: Any = None
    try:
        async with DemoPhones(folder / "phones") as phones:
            env = demo_environment(
                os.environ, demo_settings(opts, sandbox, phones.address, model, start)
            )
            worker = Worker(env, folder, state, feed, opts.dashboard_port)
            ready = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_stop_on_failure(worker.run(stop, ready), stop))
                engine, cast, _ = await _prepare(opts, url, start)
                people = await _cast_and_people(engine, api, feed, cast, names)
                _banner(console, opts, sandbox, model)
                base = await Baseline.read(engine)
                ready.set()
                console.print("Воркер запускается…")
                await _first_of(worker.running, stop)  # the demo's time starts with the worker
                clock = FastClock(worker.origin or datetime.now(UTC), start, opts.clock_speed)
                store = SqlHistoryStore(session_factory(engine))
                tg.create_task(_timer(stop, opts.seconds))
                tg.create_task(people.run(stop))
                tg.create_task(_deliveries(stop, store, cast, feed))
                tg.create_task(_show(console, engine, base, feed, opts, stop, clock))
        final = await snapshot(engine, base)
        console.print(render(final, [], 0, None).renderables[1])
        console.print(
            f"Хранилище демо осталось в {folder}: `POVTOR_DATA_DIR={folder} povtor report` — "
            f"показатели; дашборд снова: `POVTOR_DATA_DIR={folder} POVTOR_OUTREACH_ENABLED=false "
            f"povtor run` и http://127.0.0.1:{opts.dashboard_port} ({LOGIN} / {PASSWORD})."
        )
    finally:
        _dump_sandbox(api, folder / "sandbox-telegram.json")
        await api.stop()
        if engine is not None:
            await engine.dispose()


async def _cast_and_people(
    engine: Any, api: BotApiEmulator, feed: Feed, cast: list[Any], names: dict[int, str]
) -> SimulatedPeople:
    """The demo login, the manager's invite, and the simulated people for every chat."""
    from bot.manager_store import ManagerStore
    from bot.tokens import make_link_token

    sessions = session_factory(engine)
    await _add_login(sessions)
    invite = await ManagerStore(sessions).create_invite("Менеджер (демо)", timedelta(hours=24))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT telegram_chat_id, name FROM clients "
                     "WHERE telegram_chat_id IS NOT NULL")
            )
        ).all()  # fmt: skip
    cast_chats = {m.chat_id for m in cast}
    names.update({m.chat_id: m.persona.name for m in cast if m.chat_id})
    people = SimulatedPeople(api, feed)
    people.add_cast(cast, lambda client_id: make_link_token(SECRET, client_id))
    for chat_id, name in rows:
        if chat_id not in cast_chats:
            people.add(int(chat_id), generic_script(int(chat_id), str(name)))
    people.add(MANAGER_CHAT, manager_script(invite))
    return people


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _stop_on_failure(work: Any, stop: asyncio.Event) -> None:
    try:
        await work
    finally:
        stop.set()


async def _timer(stop: asyncio.Event, seconds: float | None) -> None:
    if seconds is None:
        return
    await wait_or_stop(stop, seconds)
    stop.set()


async def _deliveries(stop: asyncio.Event, store: Any, cast: list[Any], feed: Feed) -> None:
    if await wait_or_stop(stop, LIVE_DELIVERY_AFTER_S):
        return
    if await deliver_live_orders(store, cast):
        feed.add("магазин: заказ доставлен — скоро придёт опрос NPS")


async def _show(
    console: Console, engine: Any, base: Baseline, feed: Feed, opts: DemoOptions,
    stop: asyncio.Event, clock: FastClock,
) -> None:  # fmt: skip
    started = time.monotonic()
    every = 1.0 if console.is_terminal else 10.0

    def elapsed() -> float:
        return time.monotonic() - started

    async def tick(draw: Callable[[Any], None]) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a locked SQLite read: next tick
                shown = f"{clock.shown(clock.now()).astimezone(MOSCOW):%H:%M} МСК"
                snap = await snapshot(engine, base)
                draw(render(snap, list(feed.lines), elapsed(), opts.seconds, shown))
            await wait_or_stop(stop, every)

    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            await tick(live.update)
    else:
        await tick(lambda group: console.print(_one_line(group, elapsed())))


def _one_line(group: Any, elapsed_s: float) -> str:
    table = group.renderables[1]
    cells = zip(table.columns[0].cells, table.columns[1].cells, strict=True)
    return f"[{elapsed_s:.0f} s] " + ", ".join(f"{k}: {v}" for k, v in cells)


def _banner(console: Console, opts: DemoOptions, sandbox: str, model: Path | None) -> None:
    console.print(
        f"Дашборд: [bold]http://127.0.0.1:{opts.dashboard_port}[/] ({LOGIN} / {PASSWORD})"
    )
    console.print(f"Песочница Telegram (будьте клиентом): [bold]{sandbox}/sandbox[/]")
    console.print(
        "Telegram и телефоны — локальные заглушки на 127.0.0.1; наружу ничего не уходит."
    )
    if model is None:
        console.print(
            "Русской модели распознавания нет: клиенты отвечают роботу кнопками телефона "
            "(`povtor model fetch ru-small` — и робот будет слышать речь)."
        )
