"""aiogram's objects bind their bot in one step: every object of a polled update, and every
method the bot calls, carries the bot as before (``.bot``, shortcuts such as ``answer``)."""

from __future__ import annotations

from typing import Any

import orjson
from aiogram import Bot
from aiogram.client.context_controller import BotContextController
from aiogram.methods import AnswerCallbackQuery, Response
from aiogram.types import CallbackQuery, InlineKeyboardButton, Update
from aiogram.types.base import TelegramObject
from pydantic import BaseModel, PrivateAttr

from bot.objects import _bind_bot, bind_bot_in_one_step
from bot.session import build_session
from povtor.settings import TelegramSettings

TOKEN = "123456:test-token"


def _press(update_id: int) -> dict[str, Any]:
    user = {"id": 501, "is_bot": False, "first_name": "Анна", "language_code": "ru"}
    keyboard = [[{"text": "Повторить заказ", "callback_data": "a:9:repeat"}]]
    message = {
        "message_id": 9,
        "from": {"id": 42, "is_bot": True, "first_name": "Shop", "username": "shop_bot"},
        "chat": {"id": 501, "type": "private", "first_name": "Анна"},
        "date": 1_700_000_000,
        "text": "Пора повторить заказ",
        "reply_markup": {"inline_keyboard": keyboard},
    }
    query = {
        "id": f"q{update_id}",
        "from": user,
        "message": message,
        "chat_instance": "ci501",
        "data": "a:9:repeat",
    }
    return {"update_id": update_id, "callback_query": query}


def _objects(value: Any) -> list[TelegramObject]:
    """``value`` and every Telegram object inside it."""
    found: list[TelegramObject] = []
    if isinstance(value, TelegramObject):
        found.append(value)
        for name in type(value).model_fields:
            found.extend(_objects(getattr(value, name)))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(_objects(item))
    return found


def _page(bot: Bot, count: int) -> list[Update]:
    body = orjson.dumps({"ok": True, "result": [_press(i) for i in range(1, count + 1)]})
    response = Response[list[Update]].model_validate(orjson.loads(body), context={"bot": bot})
    assert response.result is not None
    return response.result


def test_building_a_session_binds_every_aiogram_class_in_one_step() -> None:
    build_session(TelegramSettings(bot_token=TOKEN))
    classes = [Update, CallbackQuery, InlineKeyboardButton, AnswerCallbackQuery]
    assert all(c.__dict__["model_post_init"] is _bind_bot for c in classes)
    assert bind_bot_in_one_step() == 0  # idempotent: nothing left to change


def test_every_object_of_a_polled_update_carries_the_bot() -> None:
    bind_bot_in_one_step()
    bot = Bot(TOKEN)
    updates = _page(bot, 3)
    assert [u.update_id for u in updates] == [1, 2, 3]
    objects = _objects(updates)
    assert len(objects) >= 3 * 8  # update, query, user, message, chat, keyboard, button...
    assert all(o.bot is bot for o in objects)
    assert all(o.__pydantic_private__ == {"_bot": bot} for o in objects)
    query = updates[0].callback_query
    assert query is not None
    assert query.message is not None
    assert query.message.chat.id == 501
    assert query.data == "a:9:repeat"


def test_the_answer_method_of_a_press_is_bound_to_its_bot() -> None:
    bind_bot_in_one_step()
    bot = Bot(TOKEN)
    query = _page(bot, 1)[0].callback_query
    assert query is not None
    method = query.answer("Спасибо")
    assert isinstance(method, AnswerCallbackQuery)
    assert method.bot is bot
    assert method.callback_query_id == "q1"
    assert method.text == "Спасибо"
    other = Bot("654321:other-token")
    assert method.as_(other).bot is other


def test_objects_without_a_bot_carry_none() -> None:
    bind_bot_in_one_step()
    update = Update.model_validate(_press(7))
    assert all(o.bot is None for o in _objects(update))
    built = CallbackQuery.model_construct(id="q", chat_instance="c", data="x")
    assert built.bot is None
    assert AnswerCallbackQuery(callback_query_id="q").bot is None


class _Tagged(TelegramObject):
    """A Telegram object with a private attribute of its own besides the bot."""

    label: str
    _seen: int = PrivateAttr(default=3)


class _Plain(BaseModel):
    _note: str = PrivateAttr(default="n")


def test_classes_with_other_private_attributes_keep_pydantic_s_set_up() -> None:
    bind_bot_in_one_step()
    assert _Tagged.__dict__["model_post_init"] is not _bind_bot
    bot = Bot(TOKEN)
    tagged = _Tagged.model_validate({"label": "x"}, context={"bot": bot})
    assert tagged.bot is bot
    assert tagged.__pydantic_private__ == {"_seen": 3, "_bot": bot}
    assert _Plain()._note == "n"
    assert not issubclass(_Plain, BotContextController)


def test_a_class_made_after_the_binding_gets_it_at_the_next_call() -> None:
    bind_bot_in_one_step()

    class Late(TelegramObject):
        value: int

    assert Late.__dict__["model_post_init"] is not _bind_bot  # pydantic's wrapper of the hook
    assert bind_bot_in_one_step() == 1
    assert Late.__dict__["model_post_init"] is _bind_bot
    bot = Bot(TOKEN)
    late = Late.model_validate({"value": 1}, context={"bot": bot})
    assert late.__pydantic_private__ == {"_bot": bot}
