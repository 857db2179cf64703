"""What the migrations built that differs from the tables the code declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import Base


async def schema_drift(engine: AsyncEngine, *names: str) -> list[Any]:
    """Alembic's differences (types compared) between the migrated database and
    ``Base.metadata`` whose description mentions one of ``names``: each subsystem checks its
    own tables and indexes."""

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, Base.metadata)
        return [d for d in found if any(name in repr(d) for name in names)]

    async with engine.connect() as conn:
        return await conn.run_sync(diff)
