"""`povtor run` as a real process with every part switched on: the planner finds a client due
for an NPS survey, the dispatcher sends it through the Telegram bot (to the fake Bot API over
HTTP), the client answers with the buttons and in words, and the answer lands in the store;
meanwhile the call engine, the dashboard and /healthz + /metrics are up, and SIGTERM drains.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.domain import ChannelKind, EventKind
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram
from tests.fakes.telegram_user import FakeUser, button_texts

pytestmark = [pytest.mark.e2e, pytest.mark.telegram]

ROOT = Path(__file__).parents[2]
CHAT = 4242


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _zone_in_daytime(now: datetime) -> str:
    """A fixed-offset zone where it is now early afternoon, inside the default message hours."""
    for hours in range(-12, 15):
        name = f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}" if hours else "Etc/GMT"
        if 12 <= now.astimezone(ZoneInfo(name)).hour <= 16:
            return name
    raise AssertionError("no zone is in the afternoon now")


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def test_worker_surveys_a_linked_client_and_records_the_answer(
    db_url: str, store: SqlHistoryStore, fake_tg: FakeTelegram, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    client = await store.create_client(
        ClientInput(
            external_id="E-1",
            name="Анна",
            phones=("+79161234567",),
            timezone=_zone_in_daytime(now),
        )
    )
    await store.add_order(
        OrderInput(
            external_id="O-1",
            client_external_id="E-1",
            placed_at=now - timedelta(days=9),
            delivered_at=now - timedelta(days=5),
            amount=Decimal("2490.00"),
        )
    )
    await store.link_telegram(client.id, CHAT)
    user = FakeUser(fake_tg, CHAT)
    metrics_port, dashboard_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_SECRET_KEY": "e2e-secret",
        "POVTOR_METRICS_PORT": str(metrics_port),
        "POVTOR_DASHBOARD_PORT": str(dashboard_port),
        "POVTOR_TELEGRAM_BOT_TOKEN": TOKEN,
        "POVTOR_TELEGRAM_BOT_USERNAME": BOT_USERNAME,
        "POVTOR_TELEGRAM_API_BASE": fake_tg.base_url,
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": str(_free_port(socket.SOCK_DGRAM)),
        "POVTOR_CALL_LIVE_ASR": "false",
        "POVTOR_ASR_MODEL": str(tmp_path / "no-model"),
        "POVTOR_OUTREACH_POLL_INTERVAL_S": "0.2",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "run",
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        survey = await user.next_message(within=60)
        assert "от 0 до 10" in survey.text
        assert [str(n) for n in range(11)] == [b for b in button_texts(survey) if b.isdigit()]
        await user.press(survey, "9")
        follow_up = await user.next_message(within=30)
        while "высокую оценку" not in follow_up.text:  # "Ваша оценка: 9" may come first
            follow_up = await user.next_message(within=30)
        await user.send_text("Курьер привёз быстро, всё вежливо")
        await user.next_message(within=30)  # thanks

        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{metrics_port}/healthz") as resp:
                health = await resp.json()
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                metrics = await resp.text()
            async with http.get(
                f"http://127.0.0.1:{dashboard_port}/", allow_redirects=False
            ) as resp:
                dashboard_status, location = resp.status, resp.headers.get("Location", "")
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), timeout=90)
    log = stderr.decode()
    assert worker.returncode == 0, log[-3000:]
    assert health["status"] == "ok"
    assert health["channels"] == [ChannelKind.CALL.value, ChannelKind.TELEGRAM.value]
    assert "povtor_attempts" in metrics
    assert (dashboard_status, location.startswith("/login")) == (303, True)

    (answer,) = await store.list_nps()
    assert (answer.client_id, answer.score, answer.channel) == (client.id, 9, ChannelKind.TELEGRAM)
    assert answer.reason_text == "Курьер привёз быстро, всё вежливо"
    kinds = {event.kind for event in await store.timeline(client.id)}
    assert {EventKind.MESSAGE_OUT, EventKind.NPS_ANSWER} <= kinds, kinds
    assert "+79161234567" not in log  # personal data never reaches the log
