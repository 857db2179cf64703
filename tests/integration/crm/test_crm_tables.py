"""The migration creates the CRM sync tables exactly as declared."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.schema import schema_drift

pytestmark = pytest.mark.crm

TABLES = ("'crm_push'", "'crm_cursors'", "'crm_contacts'", "'crm_tokens'")


async def test_migration_creates_exactly_the_declared_crm_tables(engine: AsyncEngine) -> None:
    assert await schema_drift(engine, *TABLES) == []
