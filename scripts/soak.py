"""Soak run: the real worker (`povtor run`) for a long stretch at a steady load of calls,
messages and button presses, against the local stand-ins of `povtor demo` (the Bot API
emulator with simulated clients, SIPp phones). Prints the worker's memory (RSS) and open file
descriptors once a minute and a verdict: their growth per hour over the run after a warm-up.

    .venv/bin/python scripts/soak.py --minutes 30          # the full run
    .venv/bin/python scripts/soak.py --minutes 10 --sample-s 30

The load: every ``--every-s`` seconds a new client whose order was just delivered (an NPS
survey is due); every other one has a Telegram chat and answers (a score button, then a typed
reason), the others are called (the SIPp phone answers and presses a key). With
``--storm-at-min M`` Telegram answers 429 (retry after 1 s) to every message from minute M for
``--storm-s`` seconds (120): the worker's /healthz is printed at both ends, and no chat may get
its survey twice. Time is
compressed as in the demo (retries within a minute). A leak shows as a steady climb of RSS or
FDs; a flat curve after the warm-up is the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
from heap_report import heap_report
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.demo.clients import Feed, Person, generic_script
from app.demo.phones import DemoPhones
from app.demo.run import DemoOptions, demo_settings
from app.demo.safety import demo_environment
from app.demo.world import zone_at_hours
from app.migrate import upgrade_async
from app.sandbox.telegram_api import BotApiEmulator
from app.sandbox.telegram_user import SimulatedUser
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.db import create_engine, session_factory
from povtor.domain import ChannelKind, ConsentChannel

CHAT_BASE = 9_150_000_000  # demo chat ids (from 9,000,000,000) apart from the demo's cast
WARM_UP_S = 120.0  # imports, first plans, caches: not counted in the growth


@dataclass
class Sample:
    at_s: float
    rss_kb: int
    anon_kb: int
    fds: int
    outcomes: int


def read_proc(pid: int) -> tuple[int, int, int]:
    """(VmRSS, RssAnon in kB, open file descriptors) of a running process. RssAnon is the
    process's own memory (heap, arenas); the rest of RSS is mapped files (code, libraries)."""
    rss = anon = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return rss, anon, len(os.listdir(f"/proc/{pid}/fd"))


def per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), in value per hour (0 with fewer than 2)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 3600


def phone_for(n: int) -> str:
    """+7 979 099 0 D NN: a demo phone that answers and presses D (keys 3..7, NN 20..99)."""
    key, nn = 3 + (n // 80) % 5, 20 + n % 80
    return f"+79790990{key}{nn:02d}"


async def add_client(store: SqlHistoryStore, n: int, zone: str, telegram: bool) -> int | None:
    """A client whose order was just delivered: an NPS survey is due. Its chat id or None."""
    now = datetime.now(UTC)
    ext = f"DEMO-SOAK-{n}"
    client = await store.create_client(
        ClientInput(
            external_id=ext,
            name=f"Клиент {n}",
            phones=(phone_for(n),),
            timezone=zone,
            preferred_channel=ChannelKind.TELEGRAM if telegram else ChannelKind.CALL,
            consents=(
                (ConsentChannel.CALL, True, "soak"),
                (ConsentChannel.TELEGRAM, True, "soak"),
            ),
        )
    )
    await store.add_order(
        OrderInput(
            external_id=f"{ext}-1",
            client_external_id=ext,
            placed_at=now - timedelta(days=2),
            delivered_at=now - timedelta(minutes=1),
            amount=Decimal("990.00"),
        )
    )
    if not telegram:
        return None
    chat = CHAT_BASE + n
    await store.link_telegram(client.id, chat)
    return chat


async def count_outcomes(engine: object) -> int:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(text("SELECT count(*) FROM outreach_outcomes"))).scalar())


def make_folder(given: str | None) -> Path:
    folder = Path(given or tempfile.mkdtemp(prefix="povtor-soak-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def soak(args: argparse.Namespace) -> int:
    folder = make_folder(args.folder)
    url = f"sqlite+aiosqlite:///{folder / 'povtor.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    store = SqlHistoryStore(session_factory(engine))
    zone = zone_at_hours(datetime.now(UTC), 10, 17)
    api = BotApiEmulator()
    sandbox = await api.start()
    feed = Feed()
    stop = asyncio.Event()
    samples: list[Sample] = []
    print(f"soak: {args.minutes} min, a client every {args.every_s} s, folder {folder}")
    print(f"load at start: {os.getloadavg()}")
    heap_dir = folder / "heap"
    if args.heap_at:
        print(
            f"heap tracing on (snapshots at minutes {args.heap_at}): the worker runs slower and "
            "its RSS includes tracemalloc's own memory; compare RSS with a run without it"
        )
    try:
        async with DemoPhones(folder / "phones") as phones, asyncio.TaskGroup() as tg:
            opts = DemoOptions(folder=folder, dashboard_port=0, sandbox_port=0, metrics_port=0)
            settings = demo_settings(opts, sandbox, phones.address, None, datetime.now(UTC))
            env = demo_environment(os.environ, settings)
            for name in ("POVTOR_DEMO_CLOCK_START", "POVTOR_DEMO_CLOCK_SPEED"):
                env.pop(name, None)  # a soak runs in real time: contact hours on the real clock
            env["POVTOR_DASHBOARD_ENABLED"] = "false"
            env["SOAK_HEAP_FRAMES"] = str(args.heap_frames)
            traced_from = [m for m in args.heap_at if m >= args.heap_trace_from]
            env["SOAK_HEAP_TRACE_FROM"] = str(len(args.heap_at) - len(traced_from) + 1)
            health_url = f"http://127.0.0.1:{free_tcp_port()}/healthz"
            env["POVTOR_METRICS_PORT"] = health_url.split(":")[2].split("/")[0]
            log = (folder / "worker.log").open("ab")
            worker = await asyncio.create_subprocess_exec(
                *worker_command(heap_dir if args.heap_at else None), env=env, cwd=folder,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
            started = time.monotonic()

            async def feeder() -> None:
                n = 0
                while not stop.is_set():
                    try:
                        chat = await add_client(store, n, zone, telegram=n % 2 == 0)
                    except OperationalError as err:  # the worker held the database too long
                        print(f"client {n} not added: {str(err).splitlines()[0]}", flush=True)
                        chat = None
                    if chat is not None:
                        user = SimulatedUser(api, chat, f"Клиент{n}")
                        person = Person(user, generic_script(chat, f"Клиент {n}"), feed)
                        tg.create_task(answering(person, n, stop))
                    n += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), args.every_s)

            async def sampler() -> None:
                print(
                    f"{'min':>5} {'rss_MB':>8} {'anon_MB':>8} {'fds':>5} {'outcomes':>9} "
                    f"{'load1':>6}"
                )
                while not stop.is_set():
                    if worker.returncode is not None:
                        print(f"the worker exited with {worker.returncode}: see {folder}")
                        stop.set()
                        return
                    rss, anon, fds = read_proc(worker.pid)
                    outcomes = await count_outcomes(engine)
                    s = Sample(time.monotonic() - started, rss, anon, fds, outcomes)
                    samples.append(s)
                    print(
                        f"{s.at_s / 60:5.1f} {rss / 1024:8.1f} {anon / 1024:8.1f} {fds:5d} "
                        f"{s.outcomes:9d} "
                        f"{os.getloadavg()[0]:6.2f}",
                        flush=True,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), args.sample_s)

            async def timer() -> None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.minutes * 60)
                stop.set()

            async def storm() -> None:
                """Telegram answers 429 (retry after 1 s) to every message for a stretch."""
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.storm_at_min * 60)
                    return
                api.fail_next(10**6, 429, methods={"sendMessage"}, retry_after=1)
                print(f"429 storm for {args.storm_s:.0f} s; health: {await health(health_url)}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.storm_s)
                refused = len(api.refused)
                print(f"storm over ({refused} refused); health: {await health(health_url)}")
                api.failures.clear()

            async def heap_snapshots() -> None:
                for number, minute in enumerate(args.heap_at, start=1):
                    with contextlib.suppress(TimeoutError):
                        wait = started + minute * 60 - time.monotonic()
                        await asyncio.wait_for(stop.wait(), max(wait, 0))
                        return
                    worker.send_signal(signal.SIGUSR1)
                    print(f"heap: {await heap_written(heap_dir, number, stop)}", flush=True)

            tg.create_task(feeder())
            if args.heap_at:
                tg.create_task(heap_snapshots())
            if args.storm_at_min is not None:
                tg.create_task(storm())
            tg.create_task(sampler())
            tg.create_task(timer())
            await stop.wait()
            code = await stop_worker(worker)
            log.close()
    finally:
        await api.stop()
        await engine.dispose()
    asked = [m.chat_id for m in api.sent if "от 0 до 10" in m.text]
    doubled = len(asked) - len(set(asked))
    print(f"surveys sent by message: {len(asked)}, to a chat twice: {doubled}")
    if args.heap_at:
        heap_report(heap_dir, WARM_UP_S / 60)
    return verdict(samples, code, args) or int(doubled > 0)


async def answering(person: Person, n: int, stop: asyncio.Event) -> None:
    """The client's script; one that goes wrong is printed, and the soak goes on."""
    try:
        await person.run(stop)
    except (AssertionError, TimeoutError, OSError, aiohttp.ClientError) as err:
        print(f"client {n}: the script failed: {type(err).__name__}: {err}", flush=True)


async def stop_worker(worker: asyncio.subprocess.Process) -> int:
    """SIGTERM (in-flight work drains), SIGKILL after two minutes: the exit code."""
    if worker.returncode is not None:
        return worker.returncode
    worker.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(worker.wait(), 120)
    except TimeoutError:
        print("the worker did not stop within 120 s of SIGTERM: killed")
        worker.kill()
        return await worker.wait()


def worker_command(heap_dir: Path | None) -> list[str]:
    """`povtor run`, under heap tracing (scripts/heap_worker.py) when given a folder for it."""
    if heap_dir is None:
        return [sys.executable, "-m", "app", "run"]
    return [sys.executable, str(Path(__file__).with_name("heap_worker.py")), str(heap_dir), "run"]


async def heap_written(heap_dir: Path, number: int, stop: asyncio.Event) -> str:
    """Wait for snapshot ``number`` (its JSON is written last); one line about it."""
    summary = heap_dir / f"heap-{number:02d}.json"
    for _ in range(300):
        if summary.exists():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
            return f"snapshot {number} not written before the end"
    else:
        return f"snapshot {number} not written within 300 s"
    s = json.loads(summary.read_text(encoding="utf-8"))
    return (
        f"snapshot {number} at {s['uptime_s'] / 60:.1f} min: "
        f"traced {s['traced_kb'] / 1024:.1f} MB, "
        f"tracemalloc's own {s['tracemalloc_kb'] / 1024:.1f} MB, {s['asyncio_tasks']} tasks, "
        f"{s['gc_objects']} objects, took {s['took_s']} s"
    )


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def health(url: str) -> str:
    """The telegram component of the worker's /healthz, as one line."""
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            body = await response.json()
    except (aiohttp.ClientError, ValueError) as err:
        return f"unreadable ({type(err).__name__})"
    part = body.get("components", {}).get("telegram", {})
    return f"{body.get('status')}; telegram {part.get('state')}: {part.get('reason', '')}"


def verdict(samples: list[Sample], code: int, args: argparse.Namespace) -> int:
    steady = [s for s in samples if s.at_s >= WARM_UP_S]
    whole_h = per_hour([(s.at_s, s.rss_kb / 1024) for s in steady])
    # judged on the later half after the warm-up: a leak climbs there as it did before, while
    # bounded caches (statements, prompts, the SQLite page cache) fill early and level off
    judged = steady[len(steady) // 2 :] if len(steady) >= 4 else steady
    rss_h = per_hour([(s.at_s, s.rss_kb / 1024) for s in judged])
    fds_h = per_hour([(s.at_s, s.fds) for s in judged])
    done = samples[-1].outcomes if samples else 0
    flat = abs(rss_h) <= args.max_rss_mb_h and abs(fds_h) <= args.max_fds_h
    marks = [s for s in samples if round(s.at_s / 60) % 10 == 0]
    print(
        "RSS every 10 minutes: "
        + ", ".join(f"{s.at_s / 60:.0f}: {s.rss_kb / 1024:.1f}" for s in marks)
    )
    if samples and samples[-1].at_s >= 3600 + WARM_UP_S:
        hour = [s for s in samples if s.at_s >= samples[-1].at_s - 3600]
        last_h = per_hour([(s.at_s, s.rss_kb / 1024) for s in hour])
        print(f"RSS over the last hour: {last_h:+.1f} MB/h")
    print(
        f"verdict: {'flat' if flat else 'GROWING'}: RSS {rss_h:+.1f} MB/h, FDs {fds_h:+.1f}/h "
        f"over the later {len(judged)} of {len(steady)} samples after a {WARM_UP_S:.0f} s "
        f"warm-up (RSS {whole_h:+.1f} MB/h over all {len(steady)}); {done} outcomes; "
        f"worker exit {code}; load at end {os.getloadavg()}"
    )
    return 0 if flat and code == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--every-s", type=float, default=10.0, help="a new client this often")
    parser.add_argument("--folder", default=None, help="default: a new temporary folder")
    parser.add_argument("--max-rss-mb-h", type=float, default=20.0)
    parser.add_argument("--max-fds-h", type=float, default=10.0)
    parser.add_argument("--storm-at-min", type=float, default=None, help="start a 429 storm")
    parser.add_argument("--storm-s", type=float, default=120.0, help="how long it lasts")
    parser.add_argument(
        "--heap-at",
        type=minutes_list,
        default=[],
        help="minutes at which to snapshot the worker's heap (e.g. 5,30,60): runs it traced",
    )
    parser.add_argument("--heap-frames", type=int, default=25, help="frames a heap trace keeps")
    parser.add_argument(
        "--heap-trace-from",
        type=float,
        default=0.0,
        help="minute from which snapshots trace allocations (before: object counts only)",
    )
    args = parser.parse_args()
    raise SystemExit(asyncio.run(soak(args)))


def minutes_list(value: str) -> list[float]:
    return sorted(float(part) for part in value.split(",") if part.strip())


if __name__ == "__main__":
    main()
