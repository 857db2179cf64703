"""The migration creates the CRM sync tables exactly as declared."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.db import Base

pytestmark = pytest.mark.crm

TABLES = ("'crm_push'", "'crm_cursors'", "'crm_contacts'", "'crm_tokens'")


async def test_migration_creates_exactly_the_declared_crm_tables(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert [c for c in changes if any(t in repr(c) for t in TABLES)] == []
