"""The one place that builds the aiogram session and Bot from the settings.

With no ``POVTOR_TELEGRAM_API_BASE`` the session keeps aiogram's own production server
(api.telegram.org): ``AiohttpSession(api=None)`` would replace it with nothing, so ``api`` is
passed only when another Bot API server (a local one, a test fake) is configured.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer

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


def build_session(tg: TelegramSettings) -> AiohttpSession:
    server = api_server(tg)
    if server is None:
        return AiohttpSession()
    return AiohttpSession(api=server)


def build_bot(tg: TelegramSettings, session: AiohttpSession | None = None) -> Bot:
    """The bot of ``tg``'s token on the configured server; raises ConfigError without a token."""
    if tg.bot_token is None:
        raise ConfigError("POVTOR_TELEGRAM_BOT_TOKEN is not set")
    return Bot(tg.bot_token.get_secret_value(), session=session or build_session(tg))


def api_host(tg: TelegramSettings) -> str:
    """The host requests go to, for log lines and health reasons (never the token)."""
    server = api_server(tg) or PRODUCTION
    return urlsplit(server.base).netloc
