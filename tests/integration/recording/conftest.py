"""Fixtures for calls and recordings: the call store over the test database, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.store import ClientInput, SqlHistoryStore
from povtor.db import session_factory
from voice.call_store import CallStore
from voice.recording import RecordingWriter


@pytest.fixture
def calls(engine: AsyncEngine, store: SqlHistoryStore) -> CallStore:
    """The call store, reporting finished calls to the real history store."""
    return CallStore(session_factory(engine), history=store)


@pytest.fixture
async def client_id(store: SqlHistoryStore) -> int:
    client = await store.create_client(
        ClientInput(external_id="C-77", name="Анна Смирнова", phones=("+79161234567",))
    )
    return client.id


@pytest.fixture
def writer() -> Iterator[RecordingWriter]:
    with RecordingWriter(threads=1) as w:
        yield w


@pytest.fixture
def recordings_root(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    return root
