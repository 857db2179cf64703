"""`povtor run` as a user runs it: a real process configured only by a ``.env`` file in its
working folder, watched through its log and its ``/healthz``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_udp_port() -> int:
    """A UDP port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def zone_in_daytime(now: datetime | None = None) -> str:
    """A fixed-offset zone where it is early afternoon now: inside every call window."""
    now = now or datetime.now(UTC)
    for hours in range(-12, 15):
        name = f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}" if hours else "Etc/GMT"
        if 12 <= now.astimezone(ZoneInfo(name)).hour <= 16:
            return name
    raise AssertionError("no zone is in the afternoon now")


def write_env(folder: Path, settings: Mapping[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
    return path


def user_env() -> dict[str, str]:
    """The process environment without any POVTOR_* (the .env file alone configures Povtor)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POVTOR_")}


async def povtor(folder: Path, *args: str, within: float = 60) -> tuple[int, str, str]:
    """Run a ``povtor`` command in ``folder`` (its .env); exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=folder,
        env=user_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    health_port: int
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_log(self, text: str, within: float = 30) -> str:
        """The first log line containing ``text`` (the worker's own word, no polling)."""
        try:
            return await asyncio.wait_for(self._line_with(text), within)
        except TimeoutError:
            raise AssertionError(
                f"no {text!r} in the log (exit code {self.process.returncode}):\n"
                f"{self.log[-4000:]}"
            ) from None

    async def _line_with(self, text: str) -> str:
        while True:
            for line in self.lines:
                if text in line:
                    return line
            if self.process.returncode is not None and self._reader_done():
                raise AssertionError(f"worker exited; log:\n{self.log[-4000:]}")
            self._changed.clear()
            await self._changed.wait()

    def _reader_done(self) -> bool:
        return self._reader is not None and self._reader.done()

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.health_port}/healthz") as resp,
        ):
            return resp.status, await resp.json()

    async def wait_health(
        self, condition: Callable[[dict[str, Any]], bool], within: float = 30
    ) -> dict[str, Any]:
        """/healthz once it satisfies ``condition`` (asked again after each log line)."""
        deadline = time.monotonic() + within
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                _status, body = await self.healthz()
                if condition(body):
                    return body
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):  # a log line, or half a second
                    await self._changed.wait()
        raise AssertionError(f"/healthz never matched; last {body}; log:\n{self.log[-4000:]}")

    async def stop(self) -> int:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it exited on its own just now
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader
        assert self.process.returncode is not None
        return self.process.returncode


@contextlib.asynccontextmanager
async def running_worker(folder: Path, settings: Mapping[str, str]) -> Any:
    """A worker started with ``settings`` as its .env; stopped (SIGTERM) on the way out."""
    health_port = int(settings.get("POVTOR_METRICS_PORT", "0")) or free_tcp_port()
    write_env(folder, {"POVTOR_METRICS_PORT": str(health_port), **settings})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "run",
        cwd=folder,
        env=user_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = Worker(process, health_port)
    worker._reader = asyncio.create_task(worker._read())
    try:
        await worker.wait_log("health and metrics on", within=60)
        yield worker
    finally:
        await worker.stop()


def base_settings(tmp_path: Path, db_url: str) -> dict[str, str]:
    """What every deployment here sets: database, data folder, key; no dashboard, no models."""
    return {
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_SECRET_KEY": "deploy-test",
        "POVTOR_DASHBOARD_ENABLED": "false",
        "POVTOR_ASR_BACKGROUND": "false",
        "POVTOR_ASR_MODEL": str(tmp_path / "no-model"),
        "POVTOR_CALL_LIVE_ASR": "false",
        "POVTOR_OUTREACH_POLL_INTERVAL_S": "0.2",
        "POVTOR_OUTREACH_HOLIDAY_CALLS": "true",
    }
