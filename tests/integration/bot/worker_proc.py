"""`povtor run` as a real process for the bot's tests: its log read as it is written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.domain import Client
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN

REPO = Path(__file__).resolve().parents[3]
ALL_DAY = {
    "POVTOR_OUTREACH_MESSAGE_START": "00:00",
    "POVTOR_OUTREACH_MESSAGE_END": "23:59:59.999999",
    "POVTOR_OUTREACH_HOLIDAYS_COUNTRY": "",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def due_for_survey(store: SqlHistoryStore, chat_id: int, n: int = 1) -> Client:
    """A client with a linked chat whose order was delivered days ago: an NPS survey is due."""
    now = datetime.now(UTC)
    client = await store.create_client(
        ClientInput(external_id=f"E-{n}", name="Анна", phones=(f"+7916123456{n}",))
    )
    await store.add_order(
        OrderInput(
            external_id=f"O-{n}",
            client_external_id=f"E-{n}",
            placed_at=now - timedelta(days=9),
            delivered_at=now - timedelta(days=5),
            amount=Decimal("2490.00"),
        )
    )
    await store.link_telegram(client.id, chat_id)
    return client


class Worker:
    """One `povtor run`; ``lines`` is its log so far (stderr)."""

    def __init__(self, env: Mapping[str, str], name: str = "worker") -> None:
        self.env = dict(env)
        self.name = name
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.metrics_port = int(self.env["POVTOR_METRICS_PORT"])
        self.dashboard_port = int(self.env["POVTOR_DASHBOARD_PORT"])

    @classmethod
    def env_for(cls, db_url: str, data_dir: Path, api_base: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POVTOR_")}
        env.update(ALL_DAY)
        env.update(
            {
                "POVTOR_DATABASE_URL": db_url,
                "POVTOR_DATA_DIR": str(data_dir),
                "POVTOR_METRICS_PORT": str(free_port()),
                "POVTOR_DASHBOARD_PORT": str(free_port()),
                "POVTOR_TELEGRAM_BOT_TOKEN": TOKEN,
                "POVTOR_TELEGRAM_BOT_USERNAME": BOT_USERNAME,
                "POVTOR_TELEGRAM_API_BASE": api_base,
                "POVTOR_TELEGRAM_POLLING_TIMEOUT_S": "5",
                "POVTOR_TELEGRAM_OUTAGE_BACKOFF_S": "0.2",
                "POVTOR_TELEGRAM_OUTAGE_BACKOFF_MAX_S": "0.5",
                "POVTOR_OUTREACH_POLL_INTERVAL_S": "0.2",
                "POVTOR_OUTREACH_CHANNEL_DOWN_RETRY_S": "0.5",
                "POVTOR_ASR_BACKGROUND": "false",
                "POVTOR_ASR_MODEL": str(data_dir / "no-model"),
                "PYTHONPATH": str(REPO),
            }
        )
        env.update(extra)
        return env

    async def start(self) -> Worker:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "run",
            cwd=REPO,
            env=self.env,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("<exit>")
            self._changed.notify_all()

    def log(self) -> str:
        return "\n".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def wait_for_line(self, text: str, within: float = 30.0) -> str:
        """The first log line containing ``text`` (waits for the worker to write it)."""

        def found() -> bool:
            return any(text in line for line in self.lines) or "<exit>" in self.lines

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(found), within)
            except TimeoutError:
                raise AssertionError(
                    f"{self.name}: no {text!r} in\n{self.log()[-3000:]}"
                ) from None
        for line in self.lines:
            if text in line:
                return line
        raise AssertionError(f"{self.name} exited before {text!r}:\n{self.log()[-3000:]}")

    async def ready(self) -> None:
        # a loaded machine can take a minute to import everything
        await self.wait_for_line("health and metrics on", within=150)
        await self.wait_for_line("dashboard on", within=30)

    async def health(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            body: dict[str, Any] = await resp.json()
            body["http_status"] = resp.status
            return body

    async def dashboard_status(self) -> int:
        url = f"http://127.0.0.1:{self.dashboard_port}/login"
        async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as resp:
            return resp.status

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 60)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)
        return code
