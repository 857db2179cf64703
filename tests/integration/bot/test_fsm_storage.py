"""aiogram's FSM storage in the bot's table: what one worker sets, another (or the same one
after a restart) reads, on SQLite and PostgreSQL; the migration creates the table as declared."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.fsm_storage import SqlStorage
from povtor.db import session_factory, utcnow
from tests.integration.schema import schema_drift

pytestmark = pytest.mark.telegram
KEY = StorageKey(bot_id=42, chat_id=7001, user_id=7001)


async def test_state_set_by_one_worker_is_read_by_another_and_cleared_for_both(
    engine: AsyncEngine,
) -> None:
    first = FSMContext(SqlStorage(session_factory(engine)), KEY)
    second = FSMContext(SqlStorage(session_factory(engine)), KEY)  # another worker
    assert await second.get_state() is None
    await first.set_state("nps_reason")
    await first.update_data(score=3, message_id=11)
    assert await second.get_state() == "nps_reason"
    assert await second.get_data() == {"score": 3, "message_id": 11}
    other = FSMContext(second.storage, StorageKey(bot_id=42, chat_id=7002, user_id=7002))
    assert await other.get_state() is None  # each chat has its own
    await second.clear()
    assert await first.get_state() is None
    assert await first.get_data() == {}


async def test_stale_lists_only_chats_left_in_the_state_since_before(engine: AsyncEngine) -> None:
    storage = SqlStorage(session_factory(engine))
    await storage.put(KEY, "nps_reason", {"score": 5})
    await storage.put(StorageKey(42, 7002, 7002), "complaint", {})
    assert await storage.stale("nps_reason", utcnow() - timedelta(minutes=1)) == []
    [stale] = await storage.stale("nps_reason", utcnow() + timedelta(seconds=1))
    assert (stale.chat_id, stale.state, stale.data) == (7001, "nps_reason", {"score": 5})


async def test_a_clear_is_skipped_when_the_state_changed_after_it_was_read(
    engine: AsyncEngine,
) -> None:
    storage = SqlStorage(session_factory(engine))
    await storage.put(KEY, "nps_score", {"message_id": 1})
    read = await storage.read(KEY)
    assert read is not None
    await storage.put(KEY, "nps_score", {"message_id": 2})  # a newer survey meanwhile
    await storage.forget(KEY, unless_changed_since=read.updated_at)
    assert await storage.get_data(KEY) == {"message_id": 2}
    newer = await storage.read(KEY)
    assert newer is not None
    await storage.forget(KEY, unless_changed_since=newer.updated_at)  # unchanged: cleared
    assert await storage.read(KEY) is None


async def test_migration_creates_exactly_the_declared_bot_tables(engine: AsyncEngine) -> None:
    assert await schema_drift(engine, "'bot_") == []
