"""The bot's session speaks JSON: calls as JSON bodies with what aiogram's form would carry,
answers validated from their text into the same objects, failures raised as aiogram raises
them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendDocument, SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.session import JsonSession
from tests.unit.bot.test_objects import TOKEN, _objects, _press


def _keyboard() -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text="Повторить заказ", callback_data="a:9:repeat")
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def _body(session: JsonSession, bot: Bot, method: Any) -> dict[str, Any]:
    body = session.json_body(bot, method)
    assert body is not None
    parsed: dict[str, Any] = orjson.loads(body)
    return parsed


def test_a_message_goes_as_json_with_the_bots_defaults_and_no_empty_fields() -> None:
    session = JsonSession()
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    method = SendMessage(chat_id=501, text="Пора повторить заказ", reply_markup=_keyboard())
    assert _body(session, bot, method) == {
        "chat_id": 501,
        "text": "Пора повторить заказ",
        "parse_mode": "HTML",
        "reply_markup": {
            "inline_keyboard": [[{"text": "Повторить заказ", "callback_data": "a:9:repeat"}]]
        },
    }
    plain = Bot(TOKEN, session=session)  # no default parse mode: none sent, as in the form
    assert "parse_mode" not in _body(session, plain, SendMessage(chat_id=501, text="x"))


def test_an_answer_and_a_poll_carry_what_the_form_carries() -> None:
    session = JsonSession()
    bot = Bot(TOKEN, session=session)
    answer = AnswerCallbackQuery(callback_query_id="q1", text="Спасибо", show_alert=False)
    assert _body(session, bot, answer) == {
        "callback_query_id": "q1",
        "text": "Спасибо",
        "show_alert": False,
    }
    poll = GetUpdates(offset=7, timeout=0, allowed_updates=[])
    assert _body(session, bot, poll) == {"offset": 7, "timeout": 0, "allowed_updates": []}
    form = AiohttpSession().build_form_data(bot, poll)
    assert {field[0]["name"] for field in form._fields} == {"offset", "timeout", "allowed_updates"}


def test_a_call_with_a_file_keeps_aiogram_s_multipart_form() -> None:
    session = JsonSession()
    bot = Bot(TOKEN, session=session)
    document = BufferedInputFile(b"report", filename="report.txt")
    assert session.json_body(bot, SendDocument(chat_id=501, document=document)) is None


def test_a_page_validated_from_its_text_is_the_page_aiogram_validates() -> None:
    session = JsonSession()
    bot = Bot(TOKEN, session=session)
    text = orjson.dumps({"ok": True, "result": [_press(1), _press(2)]}).decode()
    ours = session.check_response(bot, GetUpdates(), 200, text).result
    theirs = AiohttpSession(json_loads=orjson.loads).check_response(bot, GetUpdates(), 200, text)
    assert ours == theirs.result
    assert ours is not None
    assert [u.update_id for u in ours] == [1, 2]
    assert all(o.bot is bot for o in _objects(ours))


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (
            429,
            '{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3",'
            '"parameters":{"retry_after":3}}',
            TelegramRetryAfter,
        ),
        (
            400,
            '{"ok":false,"error_code":400,"description":"Bad Request: query is too old"}',
            TelegramBadRequest,
        ),
        (
            200,
            '{"ok":false,"error_code":400,"description":"Bad Request: query is too old"}',
            TelegramAPIError,
        ),
        (502, "<html><body>502 Bad Gateway</body></html>", ClientDecodeError),
        (200, '{"ok":true,"result":"not a bool"}', ClientDecodeError),
        (500, '{"ok":false,"error_code":500,"description":"Internal"}', TelegramServerError),
    ],
    ids=["429", "400", "not-ok-200", "html", "wrong-shape", "500"],
)
def test_a_failure_raises_aiogram_s_error(
    status: int, content: str, error: type[Exception]
) -> None:
    session = JsonSession(json_loads=orjson.loads)
    bot = Bot(TOKEN, session=session)
    method = AnswerCallbackQuery(callback_query_id="q1")
    with pytest.raises(error) as raised:
        session.check_response(bot, method, status, content)
    with pytest.raises(type(raised.value)):  # the very error of aiogram's own session
        AiohttpSession(json_loads=orjson.loads).check_response(bot, method, status, content)
