"""A poller killed outright (SIGKILL) with a page of presses in hand: the page is neither
confirmed to Telegram nor taken for handled, so the next poller records every press once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser
from tests.integration.bot.worker_proc import Worker, due_for_survey
from tests.integration.sip.peers import wait_until

CHATS = 3
POLLS = "this worker polls Telegram"
EXTRA = {"POVTOR_TELEGRAM_POLL_LEASE_S": "1.5", "POVTOR_OUTREACH_HEARTBEAT_S": "1"}


async def _press_write_waits(engine: AsyncEngine) -> bool:
    """A worker's write of a press waits for the table lock the test holds."""
    async with engine.connect() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%bot_presses%'"
            )
        )
    return bool(waiting)


async def test_presses_in_hand_of_a_killed_poller_are_recorded_once_by_the_next(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, fake_tg: FakeTelegram, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("the press write is held by a PostgreSQL table lock")
    users = []
    for n in range(CHATS):
        await due_for_survey(store, 7300 + n, n)
        fake_tg.add_chat(7300 + n)
        users.append(FakeUser(fake_tg, 7300 + n))
    first = await Worker(
        Worker.env_for(db_url, tmp_path / "a", fake_tg.base_url, **EXTRA), "first"
    ).start()
    second: Worker | None = None
    try:
        surveys = [await user.next_message(within=150) for user in users]
        async with engine.connect() as locker:  # reads pass, the presses' writes wait
            await locker.execute(text("LOCK TABLE bot_presses IN SHARE MODE"))
            queries = [await u.press(s, "8") for u, s in zip(users, surveys, strict=True)]
            await wait_until(lambda: _press_write_waits(engine), 60, "a press write", every_s=0.1)
            await first.stop(signal.SIGKILL)  # a page in hand, its handlers mid-write
            await locker.rollback()
        second = await Worker(
            Worker.env_for(db_url, tmp_path / "b", fake_tg.base_url, **EXTRA), "second"
        ).start()
        await second.wait_for_line(POLLS, within=150)
        for query in queries:  # each press answered by the next poller
            await fake_tg.wait_for(lambda q=query: fake_tg.callback_answers.get(q) is not None, 60)
        for user in users:  # and the survey goes on: asked why, once
            await fake_tg.wait_for(
                lambda u=user: any("Что нам улучшить" in m.text for m in u.messages()), 30
            )
    finally:
        if first.running:
            await first.stop(signal.SIGKILL)
        code = await second.stop() if second is not None else None
    async with engine.connect() as conn:
        pressed = (await conn.execute(text("SELECT callback_query_id FROM bot_presses"))).all()
        handled = await conn.scalar(
            text("SELECT count(*) FROM bot_updates WHERE handled_at IS NOT NULL")
        )
    assert sorted(q for (q,) in pressed) == sorted(queries)  # each press once
    assert fake_tg.answered_count == CHATS
    assert handled == CHATS
    for user in users:
        assert sum("Что нам улучшить" in m.text for m in user.messages()) == 1
    assert second is not None
    assert code == 0, second.log()[-3000:]
    assert "Traceback" not in second.log(), second.log()[-3000:]
