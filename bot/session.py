"""The one place that builds the aiogram session and Bot from the settings.

With no ``POVTOR_TELEGRAM_API_BASE`` the session keeps aiogram's own production server
(api.telegram.org): ``AiohttpSession(api=None)`` would replace it with nothing, so ``api`` is
passed only when another Bot API server (a local one, a test fake) is configured.

The session (:class:`JsonSession`) speaks JSON both ways: a call without files goes as a JSON
body, and an answer is validated by pydantic straight from its text (every update of a page,
every answer), and keeps the response model of each method it reads an answer of. Building
one also gives aiogram's object classes their one-step bot binding
(:func:`bot.objects.bind_bot_in_one_step`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

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


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


_JSON_BODY = {"Content-Type": "application/json"}
_OK = range(HTTPStatus.OK, HTTPStatus.IM_USED + 1)


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session, speaking JSON both ways (the Bot API takes either form).

    A call goes as a JSON body (orjson) instead of aiogram's url-encoded form, which quotes
    every byte of a Cyrillic text through ``urllib`` and builds a multipart writer for each
    request (12 us of a 15 us body for an ``answerCallbackQuery``); a call with files keeps
    aiogram's multipart form. A successful answer is validated by pydantic straight from its
    text, without a dict in between; anything else (an error, a body that does not validate)
    goes through aiogram's own ``check_response``, which raises its usual errors.

    It keeps ``Response[T]`` of each method it reads an answer of: pydantic caches parametrized
    models only weakly, and a collection frees them (they hold reference cycles), so without a
    reference here an ``answerCallbackQuery`` after a collection built its response model again
    (milliseconds each, a large share of the bot's CPU during a page of presses). aiogram's own
    reads (a call with files, an error) find the same models in pydantic's cache."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._models: dict[Any, Any] = {}

    def json_body(self, bot: Bot, method: TelegramMethod[TelegramType]) -> bytes | None:
        """The call as JSON, the values prepared as aiogram prepares them for its form (the
        bot's defaults filled in, what the form leaves out left out); None with files."""
        files: dict[str, InputFile] = {}
        body: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":
                body[key] = prepared
        return None if files else orjson.dumps(body)

    async def make_request(  # aiogram's signature, timeout included
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> TelegramType:
        body = self.json_body(bot, method)
        if body is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:  # the errors as aiogram's make_request raises them
            async with session.post(
                url,
                data=body,
                headers=_JSON_BODY,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(
            bot=bot, method=method, status_code=resp.status, content=raw_result
        )
        return cast(TelegramType, response.result)

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        if status_code in _OK:
            returning = method.__returning__
            model = self._models.get(returning)
            if model is None:
                model = self._models[returning] = Response[returning]  # type: ignore[valid-type]
            try:
                response = model.model_validate_json(content, context={"bot": bot})
            except ValueError:  # not JSON, or not the answer's shape: aiogram says which
                pass
            else:
                if response.ok:
                    return response
        return super().check_response(bot, method, status_code, content)


def build_session(tg: TelegramSettings) -> AiohttpSession:
    bind_bot_in_one_step()
    server = api_server(tg)
    json: dict[str, Any] = {"json_loads": orjson.loads, "json_dumps": _dumps}
    return JsonSession(**json) if server is None else JsonSession(api=server, **json)


def build_bot(tg: TelegramSettings, session: AiohttpSession | None = None) -> Bot:
    """The bot of ``tg``'s token on the configured server; raises ConfigError without a token."""
    if tg.bot_token is None:
        raise ConfigError("POVTOR_TELEGRAM_BOT_TOKEN is not set")
    return Bot(tg.bot_token.get_secret_value(), session=session or build_session(tg))


def api_host(tg: TelegramSettings) -> str:
    """The host requests go to, for log lines and health reasons (never the token)."""
    server = api_server(tg) or PRODUCTION
    return urlsplit(server.base).netloc
