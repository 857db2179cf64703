"""Webhook mode: an aiohttp server that accepts updates only with the right secret header."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING

from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from povtor.errors import ConfigError

if TYPE_CHECKING:
    from bot.service import BotService

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_app(service: BotService, secret: str, path: str) -> web.Application:
    """Checks the secret on every request; answers 200 once the update is handled, so that
    Telegram redelivers updates whose handling failed (redeliveries are deduplicated)."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request with a wrong or missing secret rejected")
            return web.Response(status=401, text="unauthorized")
        try:
            update = Update.model_validate(await request.json(), context={"bot": service.bot})
        except (ValueError, ValidationError):
            return web.Response(status=400, text="bad update")
        await service.handle(update)
        return web.json_response({})

    app = web.Application()
    app.router.add_post(path, receive)
    return app


async def serve_webhook(service: BotService, stop: asyncio.Event) -> None:
    tg = service.deps.settings.telegram
    if not tg.webhook_url or tg.webhook_secret is None:
        raise ConfigError("webhook mode needs POVTOR_TELEGRAM_WEBHOOK_URL and _WEBHOOK_SECRET")
    secret = tg.webhook_secret.get_secret_value()
    runner = web.AppRunner(webhook_app(service, secret, tg.webhook_path), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, tg.webhook_host, tg.webhook_port)
        await site.start()
        await service.bot.set_webhook(
            tg.webhook_url, secret_token=secret, allowed_updates=["message", "callback_query"]
        )
        log.info("webhook listening on %s:%d%s", tg.webhook_host, tg.webhook_port, tg.webhook_path)
        await stop.wait()
    finally:
        await runner.cleanup()
