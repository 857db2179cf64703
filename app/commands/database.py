"""The one database engine a command uses, opened from the settings and disposed at its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import create_engine
from povtor.settings import Settings


@asynccontextmanager
async def open_engine(settings: Settings, *, pool_size: int = 10) -> AsyncIterator[AsyncEngine]:
    """An engine on ``settings.db_url`` for the length of the ``async with``."""
    engine = create_engine(settings.db_url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()
