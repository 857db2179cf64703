"""Several workers of one bot on PostgreSQL: one polls (the others only send) and another takes
over when it dies; deep links are signed with one key whichever worker prints them."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.lease import link_key
from povtor.db import session_factory
from povtor.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser
from tests.integration.bot.worker_proc import Worker

POLLS = "this worker polls Telegram"
SENDS_ONLY = "another worker polls Telegram; this one sends only"


async def test_one_worker_polls_and_another_takes_over_when_it_dies(
    db_url: str, fake_tg: FakeTelegram, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("one worker per SQLite database")
    extra = {"POVTOR_TELEGRAM_POLL_LEASE_S": "1.5", "POVTOR_OUTREACH_HEARTBEAT_S": "1"}
    first = await Worker(
        Worker.env_for(db_url, tmp_path / "a", fake_tg.base_url, **extra), "first"
    ).start()
    second: Worker | None = None
    user = FakeUser(fake_tg, 777)
    fake_tg.add_chat(777)
    try:
        await first.wait_for_line(POLLS, within=150)
        second = await Worker(
            Worker.env_for(db_url, tmp_path / "b", fake_tg.base_url, **extra), "second"
        ).start()
        await second.ready()
        await second.wait_for_line(SENDS_ONLY)
        await user.send_text("/start")
        await user.next_message(within=30)  # answered by the poller

        await first.stop(signal.SIGKILL)  # dies without letting go of the lease
        await second.wait_for_line(POLLS, within=30)
        await user.send_text("/start")
        await user.next_message(within=30)  # the survivor now gets the updates
        assert second.running
    finally:
        if first.running:
            await first.stop(signal.SIGKILL)
        code = await second.stop() if second is not None else None
    assert fake_tg.conflicts == 0, "two workers polled at once"
    assert code == 0, second.log()[-3000:] if second else ""
    assert second is not None
    assert "Unclosed client session" not in second.log()
    assert "Traceback" not in second.log(), second.log()[-3000:]


async def test_deep_links_are_signed_with_one_key_on_every_worker(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    one = Settings(data_dir=tmp_path / "one", database_url=db_url)
    other = Settings(data_dir=tmp_path / "other", database_url=db_url)
    assert one.resolved_secret_key() != other.resolved_secret_key()  # each folder's own key
    key = await link_key(one, sessions)
    assert await link_key(other, sessions) == key
    assert key == one.resolved_secret_key()  # the first worker's key is kept: its links work
    configured = Settings(data_dir=tmp_path / "x", database_url=db_url, secret_key="shared")
    assert await link_key(configured, sessions) == "shared"
