"""``povtor db``: schema migrations of the history store."""

from __future__ import annotations

import typer

from povtor.logs import setup_logging
from povtor.settings import Settings

db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("heads", help="Target revision (default: all heads)."),
) -> None:
    """Create or upgrade the database schema (every subsystem's migrations)."""
    from app.migrate import upgrade

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    if settings.database_url is None:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upgrade(settings.db_url, revision)
    typer.echo("database schema is up to date", err=True)


@db_app.command("current")
def current_command() -> None:
    """Show the schema revision of each branch."""
    from app.migrate import current

    current(Settings().db_url)
