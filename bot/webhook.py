"""Webhook mode: an aiohttp server that accepts updates only with the right secret header.

``POVTOR_TELEGRAM_WEBHOOK_URL`` decides both what Telegram is told (setWebhook) and the path
served here, so the two cannot disagree; a request to any other path is answered 404 and logged
(once per path), since it usually means a proxy rewrites the path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.link import LINK_ERRORS, TOKEN_REFUSED
from povtor.errors import ConfigError

if TYPE_CHECKING:
    from bot.service import BotService
    from povtor.settings import TelegramSettings

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_LOGGED_PATHS = 20  # distinct wrong paths logged; a scanner cannot flood the log


def webhook_path(url: str) -> str:
    """The path of ``POVTOR_TELEGRAM_WEBHOOK_URL``: the one this server answers on."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"POVTOR_TELEGRAM_WEBHOOK_URL must be a full https:// URL (got {url!r})")
    return parts.path or "/"


def check_webhook_settings(tg: TelegramSettings) -> tuple[str, str, str]:
    """(url, path, secret) of webhook mode, or ConfigError naming the missing setting."""
    if not tg.webhook_url or tg.webhook_secret is None:
        raise ConfigError("webhook mode needs POVTOR_TELEGRAM_WEBHOOK_URL and _WEBHOOK_SECRET")
    return tg.webhook_url, webhook_path(tg.webhook_url), tg.webhook_secret.get_secret_value()


def webhook_app(service: BotService, secret: str, path: str) -> web.Application:
    """Checks the secret on every request; answers 200 once the update is handled, so that
    Telegram redelivers updates whose handling failed (redeliveries are deduplicated)."""
    wrong_paths: set[str] = set()

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

    async def elsewhere(request: web.Request) -> web.Response:
        if request.path not in wrong_paths and len(wrong_paths) < _LOGGED_PATHS:
            wrong_paths.add(request.path)
            log.warning(
                "webhook: %s %s answered 404; updates are received on %s only (the path of "
                "POVTOR_TELEGRAM_WEBHOOK_URL)",
                request.method,
                request.path[:200],
                path,
            )
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_post(path, receive)
    app.router.add_route("*", "/{tail:.*}", elsewhere)
    return app


async def serve_webhook(service: BotService, stop: asyncio.Event) -> None:
    """Listen, then tell Telegram where to post (retried with backoff while it is away)."""
    tg = service.deps.settings.telegram
    url, path, secret = check_webhook_settings(tg)
    runner = web.AppRunner(webhook_app(service, secret, path), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, tg.webhook_host, tg.webhook_port)
        await site.start()
        log.info("webhook listening on %s:%d%s", tg.webhook_host, tg.webhook_port, path)
        while not stop.is_set():
            try:
                await service.bot.set_webhook(
                    url, secret_token=secret, allowed_updates=["message", "callback_query"]
                )
            except LINK_ERRORS as err:
                if service.link.failed(err).state == TOKEN_REFUSED:
                    break
                await service.wait(stop, service.link.next_delay())
                continue
            service.link.succeeded()
            break
        await stop.wait()
    finally:
        await runner.cleanup()
