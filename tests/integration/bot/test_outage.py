"""`povtor run` when Telegram cannot be reached or refuses the token: the worker stays up, says
so once and on /healthz, keeps planning, and sends what waited once Telegram is back."""

from __future__ import annotations

import signal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser
from tests.integration.bot.worker_proc import Worker, due_for_survey, free_port
from tests.integration.sip.peers import wait_until

CHAT = 5151


async def _attempt_details(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT state, coalesce(last_detail, '') FROM outreach_attempts")
        )
        return [(row[0], row[1]) for row in rows]


async def _held_back(engine: AsyncEngine, within: float = 30.0) -> list[tuple[str, str]]:
    """The attempts once the dispatcher has held one back for Telegram (a deadline, not a
    guess: the database is read until it says so)."""
    details: list[tuple[str, str]] = []

    async def said() -> bool:
        details[:] = await _attempt_details(engine)
        return any("telegram unavailable" in detail for _, detail in details)

    await wait_until(said, within, "an attempt held back for Telegram", every_s=0.1)
    return details


async def test_worker_waits_out_an_unreachable_bot_api_and_sends_once_it_is_back(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    await due_for_survey(store, CHAT)
    port = free_port()  # nothing listens here yet
    env = Worker.env_for(db_url, tmp_path / "data", f"http://127.0.0.1:{port}")
    worker = await Worker(env).start()
    fake = FakeTelegram()
    try:
        await worker.ready()
        line = await worker.wait_for_line("telegram down")
        assert f"cannot reach the Bot API at 127.0.0.1:{port}" in line

        health = await worker.health()
        assert (health["http_status"], health["status"]) == (200, "degraded")
        assert health["components"]["telegram"]["state"] == "down"
        assert f"127.0.0.1:{port}" in health["components"]["telegram"]["reason"]
        assert await worker.dashboard_status() == 200

        # planned and held back (not failed): the survey waits for Telegram
        await worker.wait_for_line("planning pass as of", within=30)
        details = await _held_back(engine)
        assert [state for state, _ in details] == ["planned"], details

        user = FakeUser(fake, CHAT)
        fake.add_chat(CHAT)
        await fake.start(port=port)
        survey = await user.next_message(within=30)
        assert "от 0 до 10" in survey.text
        await worker.wait_for_line("telegram recovered")
        assert (await worker.health())["status"] == "ok"
        assert worker.running
    finally:
        code = await worker.stop()
        await fake.stop()
    log = worker.log()
    assert code == 0, log[-3000:]
    assert worker.count("telegram down") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "Unclosed client session" not in log
    assert len(fake.sent) == 1


async def test_worker_with_a_refused_token_keeps_running_and_says_so(
    db_url: str, store: SqlHistoryStore, tmp_path: Path
) -> None:
    fake = FakeTelegram(token="7000001:AnotherBotsTokenNotOurs_0123456789abc")
    await fake.start()
    env = Worker.env_for(db_url, tmp_path / "data", fake.base_url)
    worker = await Worker(env).start()
    try:
        await worker.ready()
        line = await worker.wait_for_line("telegram down")
        assert "refused the bot token (401 Unauthorized)" in line
        assert "POVTOR_TELEGRAM_BOT_TOKEN" in line
        health = await worker.health()
        assert health["status"] == "degraded"
        assert health["components"]["telegram"]["state"] == "down"
        assert "refused the bot token" in health["components"]["telegram"]["reason"]
        assert await worker.dashboard_status() == 200
        assert worker.running
    finally:
        code = await worker.stop(signal.SIGTERM)
        await fake.stop()
    log = worker.log()
    assert code == 0, log[-3000:]
    assert fake.unauthorized == 1, "a refused token is not retried"
    assert worker.count("telegram down") == 1
    assert "Traceback" not in log, log[-3000:]
