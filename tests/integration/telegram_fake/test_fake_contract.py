"""The fake Bot API answers in shapes aiogram accepts, and is as strict as Telegram: through
aiogram's own session (url-encoded forms) and through the bot's (JSON bodies, answers validated
from their text), which must see the same answers and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.session import JsonSession
from tests.fakes.telegram_api import BOT_ID, TOKEN, FakeTelegram
from tests.fakes.telegram_user import FakeUser

pytestmark = pytest.mark.telegram


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(params=[AiohttpSession, JsonSession], ids=["form", "json"])
async def bot(api: FakeTelegram, request: pytest.FixtureRequest) -> AsyncIterator[Bot]:
    session = request.param(api=TelegramAPIServer.from_base(api.base_url))
    client = Bot(TOKEN, session=session)
    yield client
    await session.close()


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Да", callback_data=data)]]
    )


async def test_messages_edits_and_callback_answers_parse_as_aiogram_types(
    api: FakeTelegram, bot: Bot
) -> None:
    me = await bot.get_me()
    assert me.id == BOT_ID
    assert me.is_bot
    user = FakeUser(api, 42)
    sent = await bot.send_message(42, "Привет", reply_markup=keyboard("x:1"))
    assert sent.chat.id == 42
    assert sent.text == "Привет"
    assert sent.reply_markup is not None
    edited = await bot.edit_message_text(text="Пока", chat_id=42, message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "Пока"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="Пока", chat_id=42, message_id=sent.message_id)

    query_id = await user.press(api.sent[-1], "Да") if api.sent[-1].reply_markup else None
    assert query_id is None  # the edit without markup removed the keyboard
    await bot.edit_message_reply_markup(
        chat_id=42, message_id=sent.message_id, reply_markup=keyboard("x:2")
    )
    query_id = await user.press(api.sent[-1], "Да")
    [raw] = (await asyncio.wait_for(bot.get_updates(timeout=1), 5))[-1:]
    assert isinstance(raw, Update)
    assert raw.callback_query is not None
    assert raw.callback_query.data == "x:2"
    assert raw.callback_query.chat_instance
    assert await bot.answer_callback_query(query_id, text="Ок")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id, text="Ок")


async def test_strict_about_chats_lengths_and_callback_data(api: FakeTelegram, bot: Bot) -> None:
    FakeUser(api, 43)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(44, "Привет")
    with pytest.raises(TelegramBadRequest, match="too long"):
        await bot.send_message(43, "я" * 4097)
    await bot.send_message(43, "я" * 4096)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(43, "Привет", reply_markup=keyboard("x" * 65))
    with pytest.raises(TelegramBadRequest, match="text is empty"):
        await bot.send_message(43, " ")
    api.block(43)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(43, "Привет")


async def test_switches_answer_429_with_retry_after_and_5xx(api: FakeTelegram, bot: Bot) -> None:
    FakeUser(api, 45)
    api.fail_next(1, 429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as throttled:
        await bot.send_message(45, "Привет")
    assert throttled.value.retry_after == 3
    api.fail_next(1, 500)
    with pytest.raises(TelegramServerError):
        await bot.send_message(45, "Привет")
    await bot.send_message(45, "Привет")


async def test_long_polling_waits_and_wakes_on_a_new_update(api: FakeTelegram, bot: Bot) -> None:
    user = FakeUser(api, 46)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == []
    assert loop.time() - started >= 0.9  # it really waited
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await user.send_text("/start")
    [update] = await asyncio.wait_for(poll, 5)  # woken well before the timeout
    assert update.message is not None
    assert update.message.text == "/start"
    again = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert again == []  # confirmed by the offset
    await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
    with pytest.raises(TelegramConflictError):
        await bot.get_updates(timeout=0)
