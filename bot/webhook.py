"""Webhook mode: aiogram's webhook handler, accepting updates only with the right secret header.

``POVTOR_TELEGRAM_WEBHOOK_URL`` decides both what Telegram is told (setWebhook) and the path
served here, so the two cannot disagree; a request to any other path is answered 404 and logged
(once per path), since it usually means a proxy rewrites the path.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.link import LINK_ERRORS, TOKEN_REFUSED
from povtor.errors import ConfigError
from povtor.lifecycle import serve_until_stop

if TYPE_CHECKING:
    from bot.service import BotService
    from povtor.settings import TelegramSettings

log = logging.getLogger(__name__)
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
    """aiogram's webhook handler on ``path``: it checks the secret on every request (401
    otherwise) and answers once the update is handled by the dispatcher (redeliveries are
    deduplicated there, and a retry racing the first try waits for it: see
    :mod:`bot.update_log`), so a worker killed mid-update leaves it to Telegram to post again;
    a body that is not an update is answered 400."""
    wrong_paths: set[str] = set()

    @web.middleware
    async def bad_update(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValueError:  # not JSON, or JSON that is not an update (pydantic's error)
            return web.Response(status=400, text="bad update")

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

    app = web.Application(middlewares=[bad_update])
    handler = SimpleRequestHandler(
        service.dispatcher,
        service.bot,
        handle_in_background=False,
        secret_token=secret,
        wait_while_busy=True,  # handed to the dispatcher's middlewares with every post
    )
    handler.register(app, path=path)
    app.router.add_route("*", "/{tail:.*}", elsewhere)
    setup_application(app, service.dispatcher, bot=service.bot)
    return app


async def serve_webhook(service: BotService, stop: asyncio.Event) -> None:
    """Listen, then tell Telegram where to post (retried with backoff while it is away)."""
    tg = service.settings.telegram
    url, path, secret = check_webhook_settings(tg)
    runner = web.AppRunner(webhook_app(service, secret, path), access_log=None)
    listening = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(
            serve_until_stop(
                runner,
                tg.webhook_host,
                tg.webhook_port,
                stop,
                on_listening=lambda _: listening.set(),
            )
        )
        await listening.wait()
        log.info("webhook listening on %s:%d%s", tg.webhook_host, tg.webhook_port, path)
        await _register(service, url, secret, stop)


async def _register(service: BotService, url: str, secret: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await service.bot.set_webhook(
                url, secret_token=secret, allowed_updates=["message", "callback_query"]
            )
        except LINK_ERRORS as err:
            if service.link.failed(err).state == TOKEN_REFUSED:
                return
            await service.wait(stop, service.link.next_delay())
            continue
        service.link.succeeded()
        return
