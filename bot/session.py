"""The one place that builds the aiogram session and Bot from the settings.

With no ``POVTOR_TELEGRAM_API_BASE`` the session keeps aiogram's own production server
(api.telegram.org): ``AiohttpSession(api=None)`` would replace it with nothing, so ``api`` is
passed only when another Bot API server (a local one, a test fake) is configured.

The session reads and writes the Bot API's JSON with orjson (every update of a page, every
answer), and keeps the response model of each method it calls (see :class:`ResponseModels`).
Building one also gives aiogram's object classes their one-step bot binding
(:func:`bot.objects.bind_bot_in_one_step`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.objects import bind_bot_in_one_step
from povtor.errors import ConfigError
from povtor.settings import TelegramSettings


def api_server(tg: TelegramSettings) -> TelegramAPIServer | None:
    """The configured Bot API server, or None for Telegram's own (aiogram's default)."""
    base = (tg.api_base or "").strip()
    if not base:
        return None
    if not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"POVTOR_TELEGRAM_API_BASE must start with http:// or https:// (got {base!r})"
        )
    return TelegramAPIServer.from_base(base.rstrip("/"))


class ResponseModels(BaseRequestMiddleware):
    """Keeps ``Response[T]`` of each method called alive. aiogram parametrizes the generic
    model for every response it reads; pydantic caches parametrized models only weakly, and a
    collection frees them (they hold reference cycles), so without this an ``answerCallbackQuery``
    after a collection built its response model again (milliseconds each, a large share of
    the bot's CPU during a page of presses)."""

    def __init__(self) -> None:
        self._models: dict[Any, type[Any]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._models:
            self._models[returning] = Response[returning]  # type: ignore[valid-type]
        return await make_request(bot, method)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def build_session(tg: TelegramSettings) -> AiohttpSession:
    bind_bot_in_one_step()
    server = api_server(tg)
    json: dict[str, Any] = {"json_loads": orjson.loads, "json_dumps": _dumps}
    session = AiohttpSession(**json) if server is None else AiohttpSession(api=server, **json)
    session.middleware(ResponseModels())
    return session


def build_bot(tg: TelegramSettings, session: AiohttpSession | None = None) -> Bot:
    """The bot of ``tg``'s token on the configured server; raises ConfigError without a token."""
    if tg.bot_token is None:
        raise ConfigError("POVTOR_TELEGRAM_BOT_TOKEN is not set")
    return Bot(tg.bot_token.get_secret_value(), session=session or build_session(tg))


def api_host(tg: TelegramSettings) -> str:
    """The host requests go to, for log lines and health reasons (never the token)."""
    server = api_server(tg) or PRODUCTION
    return urlsplit(server.base).netloc
