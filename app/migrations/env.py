"""Alembic environment: async engine, URL handed in by app.migrate."""

from __future__ import annotations

import asyncio
import importlib

from alembic import context
from sqlalchemy.engine import Connection

from app.migrate import SUBSYSTEMS
from povtor.db import Base, create_engine

_EXTRA_TABLES = (
    "voice.asr_tables",
    "crm_sync.history.tables",
    "crm_sync.outbound.tables",
    "crm_sync.metrics.tables",
)  # tables outside <pkg>.tables
for _module in [f"{name}.tables" for name in SUBSYSTEMS] + list(_EXTRA_TABLES):
    try:  # register every subsystem's tables for autogenerate
        importlib.import_module(_module)
    except ModuleNotFoundError as err:
        if err.name != _module:
            raise

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to Alembic")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
