"""The sandbox page over HTTP: a person sees what a real bot (aiogram) sent through the
emulator, with its buttons, presses one and writes; the bot receives both as Telegram updates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from app.sandbox.page import SandboxPage
from app.sandbox.telegram_api import TOKEN, BotApiEmulator

pytestmark = pytest.mark.telegram
CHAT = 1001


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    api = BotApiEmulator()
    app = web.Application()
    SandboxPage(api, {CHAT: "Вы (песочница)"}).add_routes(app)
    await api.start(app)
    api.add_chat(CHAT, "Вы")
    yield api
    await api.stop()


async def test_a_person_on_the_page_sees_buttons_presses_and_writes_to_the_bot(
    emulator: BotApiEmulator,
) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    bot = Bot(TOKEN, session=session)
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="9", callback_data="s:9")]]
        )
        await bot.send_message(CHAT, "Оцените нас от 0 до 10", reply_markup=keyboard)
        base = f"{emulator.base_url}/sandbox"
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as page:
                assert "песочница" in await page.text()
            async with http.get(f"{base}/api/chats") as resp:
                assert await resp.json() == [{"id": CHAT, "name": "Вы (песочница)"}]
            async with http.get(f"{base}/api/chats/{CHAT}") as resp:
                (shown,) = await resp.json()
            assert (shown["text"], shown["buttons"]) == ("Оцените нас от 0 до 10", ["9"])
            press = {"message_id": shown["message_id"], "button": "9"}
            async with http.post(f"{base}/api/chats/{CHAT}/press", json=press) as resp:
                assert resp.status == 200
            missing = {"message_id": shown["message_id"], "button": "10"}
            async with http.post(f"{base}/api/chats/{CHAT}/press", json=missing) as resp:
                assert resp.status == 400
            async with http.post(f"{base}/api/chats/{CHAT}/text", json={"text": "Всё ок"}) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/chats/{CHAT}") as resp:
                assert [m["from"] for m in await resp.json()] == ["bot", "me", "me"]
        updates = await bot.get_updates(timeout=0)
    finally:
        await session.close()
    assert updates[0].callback_query is not None
    assert updates[0].callback_query.data == "s:9"
    assert updates[1].message is not None
    assert updates[1].message.text == "Всё ок"
