"""Real worker processes for the outreach tests: started, watched and stopped by signals."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Contact windows open all day, no holidays, generous caps, no pacing, no approval step,
# advertising consent not required, quick retries and leases: the reliability tests are about
# exactly-once, not about the calendar or consent.
OPEN_ALL_DAY = {
    f"POVTOR_OUTREACH_{name}": value
    for name, value in {
        "CALL_WEEKDAY_START": "00:00",
        "CALL_WEEKDAY_END": "23:59:59.999999",
        "CALL_WEEKEND_START": "00:00",
        "CALL_WEEKEND_END": "23:59:59.999999",
        "MESSAGE_START": "00:00",
        "MESSAGE_END": "23:59:59.999999",
        "HOLIDAYS_COUNTRY": "",
        "CALLS_PER_DAY": "1000",
        "CALLS_PER_WEEK": "1000",
        "CALLS_PER_MONTH": "1000",
        "MESSAGES_PER_DAY": "1000",
        "MESSAGES_PER_WEEK": "1000",
        "MESSAGES_PER_MONTH": "1000",
        "RETRY_BUSY": "0:2",
        "LEASE_S": "2",
        "POLL_INTERVAL_S": "0.1",
        "PLAN_INTERVAL_S": "3600",
        "HEARTBEAT_S": "1",
        "PACING": "",
        "APPROVAL_THRESHOLD": "0",
        "REQUIRE_AD_CONSENT": "false",
    }.items()
}


def worker_env(db_url: str, journal: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POVTOR_")}
    env.update(OPEN_ALL_DAY)
    env.update(
        {
            "POVTOR_DATABASE_URL": db_url,
            "POVTOR_DATA_DIR": str(data_dir),
            "POVTOR_METRICS_PORT": "0",
            "POVTOR_TELEGRAM_ANSWER_TIMEOUT_S": "0",
            "POVTOR_TEST_JOURNAL": str(journal),
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


_running: list[Worker] = []


def kill_leftovers() -> None:
    """Kill the workers a test started and did not stop (it failed half-way): a worker left
    running keeps its connections and claims and would disturb every later test."""
    while _running:
        worker = _running.pop()
        if worker.proc.poll() is None:
            worker.kill()


class Worker:
    """One `python -m tests.fakes.outreach_worker` process, its log in a file."""

    def __init__(
        self, env: dict[str, str], log: Path, *, module: str = "tests.fakes.outreach_worker"
    ) -> None:
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module], env=env, cwd=REPO, stdout=self._fh, stderr=self._fh
        )
        _running.append(self)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def started(self, within_s: float = 30.0) -> None:
        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited {self.proc.returncode}: {self.text()[-3000:]}"
                )
            return "starting:" in self.text()

        await wait_until(up, within_s, what=f"worker start ({self.log})")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._fh.close()

    async def stop(self, within_s: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"worker did not stop on SIGTERM: {self.text()[-2000:]}")
            await asyncio.sleep(0.05)
        self._fh.close()
        return self.proc.returncode


async def wait_until(
    condition: Callable[[], Awaitable[bool]], within_s: float, *, what: str = "condition"
) -> None:
    """Check ``condition`` until it holds or the deadline passes (then fail)."""
    deadline = time.monotonic() + within_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def journal_keys(journal: Path) -> collections.Counter[str]:
    if not journal.exists():
        return collections.Counter()
    return collections.Counter(
        line.split("\t", 1)[0] for line in journal.read_text().splitlines() if line
    )


async def run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run a command to completion without blocking the loop: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()
