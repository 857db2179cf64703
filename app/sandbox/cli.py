"""`povtor sandbox`: the Bot API emulator and its page, on their own, for trying a bot."""

from __future__ import annotations

import typer


def sandbox(
    port: int = typer.Option(8081, "--port", help="Port on 127.0.0.1."),
) -> None:
    """A local Telegram Bot API (for POVTOR_TELEGRAM_API_BASE) and a page to be its users."""
    import asyncio

    from aiohttp import web

    from app.sandbox.page import SandboxPage
    from app.sandbox.telegram_api import BOT_USERNAME, TOKEN, BotApiEmulator

    async def main() -> None:
        api = BotApiEmulator()
        app = web.Application()
        page = SandboxPage(api)
        page.add_routes(app)
        base = await api.start(app, port=port)
        api.add_chat(1001, "Клиент")
        typer.echo(f"Bot API: {base} (POVTOR_TELEGRAM_API_BASE={base})")
        typer.echo(
            f"POVTOR_TELEGRAM_BOT_TOKEN={TOKEN} POVTOR_TELEGRAM_BOT_USERNAME={BOT_USERNAME}"
        )
        typer.echo(f"Page: {base}/sandbox (chat 1001; Ctrl-C stops)")
        try:
            await asyncio.Event().wait()
        finally:
            await api.stop()

    import contextlib

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
