"""Button presses while PostgreSQL is down and comes back: the bot has already taken the
presses from Telegram (polling confirms them with the next getUpdates), so each must still be
recorded once when the database returns, and answered once. Runs on a throwaway server of
its own (stopping the shared one would cut every other test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.migrate import upgrade
from bot.service import BotService
from crm_sync.history.store import SqlHistoryStore
from povtor.db import create_engine, session_factory
from povtor.domain import Purpose
from povtor.settings import Settings, TelegramSettings
from tests.conftest import _pg_admin, in_thread
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram
from tests.integration.bot.conftest import FixedReports, RecordingSink
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user
from tests.pg_server import NoPostgres, ThrowawayPostgres

pytestmark = [pytest.mark.postgres, pytest.mark.telegram, pytest.mark.slow]

CHATS = 4


@pytest.fixture
async def own_postgres() -> AsyncIterator[tuple[ThrowawayPostgres, str]]:
    server = ThrowawayPostgres()
    try:
        admin = await asyncio.to_thread(server.start)
    except NoPostgres as err:
        pytest.skip(str(err))
    try:
        await _pg_admin(admin, 'CREATE DATABASE "povtor_presses"')
        url = admin.rsplit("/", 1)[0] + "/povtor_presses"
        await asyncio.to_thread(in_thread, upgrade, url)
        yield server, url
    finally:
        await asyncio.to_thread(server.stop)


async def test_presses_taken_while_postgres_is_down_are_recorded_once_when_it_returns(
    own_postgres: tuple[ThrowawayPostgres, str], tmp_path: Path
) -> None:
    server, url = own_postgres
    fake = FakeTelegram()
    await fake.start()
    engine = create_engine(url)
    store = SqlHistoryStore(session_factory(engine))
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        secret_key="test-secret-key",
        telegram=TelegramSettings(
            bot_token=TOKEN,
            bot_username=BOT_USERNAME,
            api_base=fake.base_url,
            polling_timeout_s=1,
            per_chat_rate=4.0,
        ),
    )
    service = BotService(
        settings, store, FixedReports(), RecordingSink(), sessions=session_factory(engine)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        pairs = [await linked_user(fake, store, 950 + i, f"C-{i}") for i in range(CHATS)]
        surveys, reminders = [], []
        for client, user in pairs:
            await service.channel.execute(attempt_for(client, Purpose.NPS), client)
            surveys.append(await user.next_message())
            await service.channel.execute(attempt_for(client, Purpose.REORDER), client)
            reminders.append(await user.next_message())

        await asyncio.to_thread(server.halt)
        queries = []
        for (_, user), survey, reminder in zip(pairs, surveys, reminders, strict=True):
            queries.append(await user.press(survey, "8"))  # a score (one update each)
            queries.append(await user.press(reminder, "Повторить заказ"))  # a page of presses
        await fake.wait_for(lambda: fake.pending_updates() == 0, within=30)  # taken by the bot
        await asyncio.to_thread(server.resume)

        for query in queries:  # each press answered once the database is back
            await fake.wait_for(lambda q=query: fake.callback_answers.get(q) is not None, 60)
        for _, user in pairs:  # the survey goes on: asked why, answered, thanked
            await fake.wait_for(
                lambda u=user: any("Что нам улучшить" in m.text for m in u.messages()), 30
            )
            await user.send_text("Всё хорошо")
            await fake.wait_for(
                lambda u=user: any("Спасибо за ответ" in m.text for m in u.messages()), 30
            )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await fake.stop()
    async with engine.connect() as conn:
        scores = (await conn.execute(text("SELECT score FROM nps_responses"))).scalars().all()
        presses = (await conn.execute(text("SELECT count(*) FROM bot_presses"))).scalar_one()
    await engine.dispose()
    assert sorted(scores) == [8] * CHATS
    assert presses == 2 * CHATS  # a score and a reminder press each, once
    assert fake.answered_count == 2 * CHATS
    for _, user in pairs:  # nothing doubled: one follow-up question and one thanks each
        texts = [m.text for m in user.messages()]
        assert sum("Что нам улучшить" in t for t in texts) == 1, texts
        assert sum("Спасибо за ответ" in t for t in texts) == 1, texts
