"""`povtor client link EXTERNAL_ID` and `povtor manager invite`: links a person opens in Telegram.

aiogram and the database are imported inside the commands so `povtor --help` stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from povtor.ports import HistoryStore
    from povtor.settings import Settings

    StoreFactory = Callable[[async_sessionmaker[AsyncSession]], HistoryStore]

manager_app = typer.Typer(help="Managers of the Telegram bot.", no_args_is_help=True)


async def bot_username(settings: Settings) -> str:
    """From the settings, else asked from Telegram (getMe)."""
    tg = settings.telegram
    if tg.bot_username:
        return tg.bot_username.lstrip("@")
    from bot.link import LINK_ERRORS, diagnose
    from bot.session import api_host, build_bot
    from povtor.errors import ChannelUnavailable, ConfigError

    if tg.bot_token is None:
        raise ConfigError("set POVTOR_TELEGRAM_BOT_USERNAME or POVTOR_TELEGRAM_BOT_TOKEN")
    bot = build_bot(tg)
    try:
        me = await bot.get_me()
    except LINK_ERRORS as err:
        raise ChannelUnavailable(
            diagnose(err, api_host(tg)).reason + " (or set POVTOR_TELEGRAM_BOT_USERNAME)"
        ) from err
    finally:
        await bot.session.close()
    if not me.username:
        raise ConfigError("the bot has no username")
    return me.username


async def client_link_url(
    settings: Settings,
    store: HistoryStore,
    external_id: str,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> str:
    """The client's deep link, signed with the key every worker shares (see ``link_key``)."""
    from bot.lease import link_key
    from bot.tokens import deep_link, make_link_token
    from povtor.errors import NotFound

    client = await store.find_client(external_id)
    if client is None:
        raise NotFound(f"client {external_id!r} not found")
    if sessions is not None:
        key = await link_key(settings, sessions)
    else:
        key = settings.resolved_secret_key()
    token = make_link_token(key, client.id)
    return deep_link(await bot_username(settings), token)


async def manager_invite_url(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], name: str
) -> str:
    from bot.manager_store import ManagerStore
    from bot.tokens import deep_link

    ttl = timedelta(hours=settings.telegram.invite_ttl_hours)
    code = await ManagerStore(sessions).create_invite(name, ttl)
    return deep_link(await bot_username(settings), code)


def _with_sessions(work: Callable[[Settings, Any], Any]) -> Any:
    from app.commands.database import open_engine
    from povtor.db import session_factory
    from povtor.errors import PovtorError
    from povtor.settings import Settings

    settings = Settings()

    async def main() -> Any:
        async with open_engine(settings) as engine:
            return await work(settings, session_factory(engine))

    try:
        return asyncio.run(main())
    except PovtorError as err:
        typer.echo(f"Ошибка: {err}", err=True)
        raise typer.Exit(1) from err


def link_command(store_factory: StoreFactory) -> Callable[[str], None]:
    """The `client link` command, given how to build the history store (composition root)."""

    def link(external_id: str = typer.Argument(..., help="Client id in your CRM")) -> None:
        """Print the client's personal Telegram link (opens the bot and links the chat)."""

        async def work(settings: Settings, sessions: Any) -> str:
            return await client_link_url(settings, store_factory(sessions), external_id, sessions)

        typer.echo(_with_sessions(work))

    return link


@manager_app.command("invite")
def invite(
    name: str = typer.Option("", "--name", help="The manager's name as shown in tasks"),
) -> None:
    """Print a one-time invite link for a manager (valid POVTOR_TELEGRAM_INVITE_TTL_HOURS)."""

    async def work(settings: Settings, sessions: Any) -> str:
        return await manager_invite_url(settings, sessions, name)

    typer.echo(_with_sessions(work))
