"""Schema migrations: Alembic over every subsystem's own migration branch."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config

SUBSYSTEMS = ("crm_sync", "outreach", "bot", "voice", "dashboard")


def version_locations() -> list[Path]:
    """``<pkg>/migrations/versions`` of every installed subsystem that has one."""
    found = []
    for name in SUBSYSTEMS:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        versions = Path(spec.origin).parent / "migrations" / "versions"
        if versions.is_dir():
            found.append(versions)
    return found


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision`` (all branches' heads by default)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=False)
