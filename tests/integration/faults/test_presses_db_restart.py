"""Button presses while PostgreSQL is down and comes back: the bot takes a page of them from
Telegram and holds it (polling confirms a page with the next getUpdates, asked for once the
page is handled), so each press is recorded once when the database returns, and answered
once. Runs on a throwaway server of its own (stopping the shared one would cut every other
test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
from tests.integration.sip.peers import wait_until
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


World = tuple[ThrowawayPostgres, str, FakeTelegram, AsyncEngine, SqlHistoryStore]


@pytest.fixture
async def world(own_postgres: tuple[ThrowawayPostgres, str]) -> AsyncIterator[World]:
    """The throwaway server, its URL, the fake Telegram, an engine and the history store."""
    server, url = own_postgres
    fake = FakeTelegram()
    await fake.start()
    engine = create_engine(url)
    try:
        yield server, url, fake, engine, SqlHistoryStore(session_factory(engine))
    finally:
        await fake.stop()
        await engine.dispose()


def _service(url: str, tmp_path: Path, fake: FakeTelegram, engine: AsyncEngine) -> BotService:
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
            poll_lease_s=2.0,  # a stopped worker's claims are taken again soon
        ),
    )
    store = SqlHistoryStore(session_factory(engine))
    sessions = session_factory(engine)
    return BotService(settings, store, FixedReports(), RecordingSink(), sessions=sessions)


async def test_presses_taken_while_postgres_is_down_are_recorded_once_when_it_returns(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, url, fake, engine, store = world
    service = _service(url, tmp_path, fake, engine)
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
        held = "waits for the database"  # a page taken by the bot and held
        await wait_until(lambda: held in caplog.text, 30, "a page held", every_s=0.05)
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
    async with engine.connect() as conn:
        scores = (await conn.execute(text("SELECT score FROM nps_responses"))).scalars().all()
        presses = (await conn.execute(text("SELECT count(*) FROM bot_presses"))).scalar_one()
    assert sorted(scores) == [8] * CHATS
    assert presses == 2 * CHATS  # a score and a reminder press each, once
    assert fake.answered_count == 2 * CHATS
    for _, user in pairs:  # nothing doubled: one follow-up question and one thanks each
        texts = [m.text for m in user.messages()]
        assert sum("Что нам улучшить" in t for t in texts) == 1, texts
        assert sum("Спасибо за ответ" in t for t in texts) == 1, texts


async def test_a_stop_while_postgres_is_down_leaves_the_held_press_to_the_next_poller(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, url, fake, engine, store = world
    stop = asyncio.Event()
    first = _service(url, tmp_path, fake, engine)
    task = asyncio.create_task(first.run(stop))
    try:
        client, user = await linked_user(fake, store, 990, "C-9")
        await first.channel.execute(attempt_for(client, Purpose.REORDER), client)
        reminder = await user.next_message()
        await asyncio.to_thread(server.halt)
        query = await user.press(reminder, "Повторить заказ")
        held = "waits for the database"
        await wait_until(lambda: held in caplog.text, 30, "a page held", every_s=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)  # the stop is not held up by the database
    assert "left to Telegram to give again" in caplog.text
    assert fake.pending_updates() == 1  # not confirmed
    assert fake.callback_answers[query] is None

    await asyncio.to_thread(server.resume)
    stop = asyncio.Event()
    task = asyncio.create_task(_service(url, tmp_path, fake, engine).run(stop))
    try:
        await fake.wait_for(lambda: fake.callback_answers.get(query) is not None, 60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    async with engine.connect() as conn:
        presses = (await conn.execute(text("SELECT callback_query_id FROM bot_presses"))).all()
    assert presses == [(query,)]
    assert fake.answered_count == 1
