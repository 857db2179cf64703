"""Shared by the benchmark scripts: throwaway databases, measured `povtor` processes, and the
side-by-side comparison every benchmark reports first (its anchor run alternately with the
subject in the same run, the median ratio, the machine's load).

Absolute times on a shared machine are noise; a ratio to an anchor measured in the same minutes
on the same data is not. ``alternate`` runs anchor and subject in turn (the order swapped every
round, so a drift in load does not favour one side), ``Comparison`` keeps the pairs and gives the
median of the per-round ratios, ``LoadWatch`` samples ``os.getloadavg`` while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from app.migrate import upgrade
from povtor.db import create_engine

PG_ADMIN_URL = os.environ.get(
    "POVTOR_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
POVTOR = str(Path(sys.executable).with_name("povtor"))


async def _pg_admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def add_loop_option(parser: argparse.ArgumentParser, subject: str) -> None:
    """``--loop uvloop|asyncio``: the event loop ``subject`` runs on, uvloop by default as in
    ``povtor run`` (where it is installed)."""
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help=f"the {subject}'s event loop (povtor run uses uvloop where it is installed)",
    )


def fresh_database(backend: str, folder: Path, name: str | None = None) -> str:
    """A new migrated database: a SQLite file in ``folder`` or a PostgreSQL database."""
    name = name or f"povtor_bench_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        path = folder / f"{name}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    output: dict[str, Any]
    cpu_seconds: float = 0.0  # user + sys of the povtor process
    server_cpu_seconds: float | None = None  # PostgreSQL processes (whole server: approximate)

    def cpu(self) -> str:
        server = "" if self.server_cpu_seconds is None else f" + pg {self.server_cpu_seconds:.1f}"
        return f"cpu {self.cpu_seconds:.1f}{server} s"


def _postgres_cpu() -> float:
    """User+sys seconds of every PostgreSQL process, reaped workers included (postmaster
    children). Other clients of the server count too, so a delta of it is an upper bound."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] not in ("postgres", "postmaster"):
            continue
        try:
            t = proc.cpu_times()
            total += t.user + t.system
            parent = proc.parent()
            if parent is None or parent.name() not in ("postgres", "postmaster"):
                total += t.children_user + t.children_system  # the postmaster: reaped ones
        except psutil.Error:
            continue
    return total


def _high_water(pid: int) -> int:
    """The peak resident memory of process ``pid`` since it started its program (0: unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def run_measured(url: str, *args: str, source: Path | None = None) -> Measured:
    """Run ``povtor ARGS --json``: wall time, peak RSS and CPU time.

    The peak is the child's own high-water mark (``VmHWM``, kept by Linux since its ``exec``),
    read every 50 ms; elsewhere its RSS sampled as often. Not ``ru_maxrss``: Linux carries it
    over from the forked copy of this process, so it read this benchmark's own peak (~900 MB
    at 1.15M orders, where the import peaks at 117-189 MB).

    ``source``: a source tree of other code (an earlier commit's) to run instead of this one."""
    env = {**os.environ, "POVTOR_DATABASE_URL": url, "POVTOR_LOG_LEVEL": "WARNING"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    pg = url.startswith("postgresql")
    server_before = _postgres_cpu() if pg else 0.0
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([POVTOR, *args, "--json"], stdout=out, stderr=err, env=env)
        watched = psutil.Process(proc.pid)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.NoSuchProcess):
                peak = max(peak, _high_water(proc.pid) or watched.memory_info().rss)
            time.sleep(0.05)  # sampling, not synchronisation
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        server = _postgres_cpu() - server_before if pg else None
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"povtor {' '.join(args)} failed:\n{stderr.decode()}")
    lines = [line for line in stdout.decode().splitlines() if line.strip()]
    return Measured(
        seconds,
        peak / 2**20,
        json.loads(lines[-1]),
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        server_cpu_seconds=server,
    )


# -- anchor beside subject ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One round: seconds the anchor and the subject took for the same work."""

    anchor_s: float
    subject_s: float

    @property
    def ratio(self) -> float:
        """Subject time over anchor time: 2.0 means the subject took twice as long."""
        return self.subject_s / self.anchor_s


@dataclass(frozen=True)
class Comparison:
    """The rounds of one subject against its anchor, and how to say the result.

    ``speed`` states the ratio the other way round (anchor time over subject time: the subject's
    rate as a share of the anchor's), for goals such as ">= 0.5x the bare loop".
    """

    subject: str
    anchor: str
    pairs: tuple[Pair, ...]
    speed: bool = False
    goal: str = ""
    unit: str = "s"  # what each side's figure is: seconds unless said otherwise

    def ratios(self) -> list[float]:
        return [1.0 / p.ratio if self.speed else p.ratio for p in self.pairs]

    def median(self) -> float:
        """Median of the per-round ratios (not a ratio of medians: each round's two runs saw the
        same load, so their ratio is what is compared)."""
        if not self.pairs:
            raise ValueError(f"{self.subject}: no rounds measured")
        return statistics.median(self.ratios())

    def line(self) -> str:
        kind = "speed" if self.speed else "time"
        rounds = ", ".join(f"{r:.2f}" for r in self.ratios())
        anchor = statistics.median(p.anchor_s for p in self.pairs)
        subject = statistics.median(p.subject_s for p in self.pairs)
        goal = f"; goal {self.goal}" if self.goal else ""
        return (
            f"ratio {self.subject} / {self.anchor} ({kind}): {self.median():.2f}x median of "
            f"{len(self.pairs)} rounds [{rounds}]; "
            f"median {self.unit}: {subject:.3g} vs {anchor:.3g}{goal}"
        )


def schedule(rounds: int, subjects: Sequence[str] = ("subject",)) -> Iterator[tuple[int, str]]:
    """The order of the runs: the anchor first in even rounds, last in odd ones, and several
    subjects in reverse order in odd rounds (so a drift in load, or what one run leaves behind
    for the next, does not favour one side)."""
    if rounds < 1:
        raise ValueError("at least one round")
    for n in range(rounds):
        sides = ["anchor", *subjects] if n % 2 == 0 else [*reversed(subjects), "anchor"]
        yield from ((n, side) for side in sides)


def _progress(n: int, side: str, seconds: float, load: LoadWatch | None) -> None:
    if load is not None:
        load.sample()
    print(f"  round {n + 1} {side}: {seconds:.3f} s", file=sys.stderr, flush=True)


def _pairs(
    times: dict[tuple[int, str], float], rounds: int, subjects: Sequence[str]
) -> dict[str, tuple[Pair, ...]]:
    return {
        s: tuple(Pair(times[n, "anchor"], times[n, s]) for n in range(rounds)) for s in subjects
    }


def alternate_many(
    anchor: Callable[[], float],
    subjects: Mapping[str, Callable[[], float]],
    rounds: int = 3,
    load: LoadWatch | None = None,
) -> dict[str, tuple[Pair, ...]]:
    """Run ``anchor`` and each subject in turn ``rounds`` times; each returns the seconds its
    measured part took (setup such as resetting tables stays outside its figure). Every subject
    is paired with the anchor run of its own round."""
    times: dict[tuple[int, str], float] = {}
    for n, side in schedule(rounds, list(subjects)):
        times[n, side] = (anchor if side == "anchor" else subjects[side])()
        _progress(n, side, times[n, side], load)
    return _pairs(times, rounds, list(subjects))


def alternate(
    anchor: Callable[[], float],
    subject: Callable[[], float],
    rounds: int = 3,
    load: LoadWatch | None = None,
) -> tuple[Pair, ...]:
    """``alternate_many`` with one subject."""
    return alternate_many(anchor, {"subject": subject}, rounds, load)["subject"]


async def alternate_async(
    anchor: Callable[[], Awaitable[float]],
    subject: Callable[[], Awaitable[float]],
    rounds: int = 3,
    load: LoadWatch | None = None,
) -> tuple[Pair, ...]:
    """``alternate`` for coroutines."""
    times: dict[tuple[int, str], float] = {}
    for n, side in schedule(rounds):
        times[n, side] = await (anchor if side == "anchor" else subject)()
        _progress(n, side, times[n, side], load)
    return _pairs(times, rounds, ["subject"])["subject"]


@dataclass
class LoadWatch:
    """The machine's load average (1 min) sampled by whoever runs the rounds: at the start, the
    end and whenever ``sample`` is called, so a report says what the ratio was measured under."""

    samples: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sample()

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def line(self) -> str:
        self.sample()
        one, five, fifteen = os.getloadavg()
        return (
            f"load: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores; "
            f"1-min load during the run {min(self.samples):.2f}-{max(self.samples):.2f}"
        )


def report_first(
    comparisons: Sequence[Comparison], load: LoadWatch, lines: Sequence[str] = ()
) -> None:
    """Print the ratios first, then the load, then the benchmark's own lines."""
    for comparison in comparisons:
        print(comparison.line())
    print(load.line())
    for line in lines:
        print(line)
    sys.stdout.flush()
