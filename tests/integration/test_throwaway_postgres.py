"""The test run's own PostgreSQL (for machines without a server): starts, serves, goes away."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from povtor.db import create_engine
from tests.conftest import run_blocking
from tests.pg_server import ThrowawayPostgres, answers, server_binaries

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(server_binaries() is None, reason="PostgreSQL server binaries absent"),
]


async def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()


def test_throwaway_server_serves_queries_then_leaves_nothing_behind() -> None:
    server = ThrowawayPostgres()
    url = server.start()
    try:
        assert answers(url)
        assert run_blocking(_version(url))[:2].isdigit()
        folder = server.folder
        assert folder is not None
        assert folder.is_dir()
    finally:
        server.stop()
    assert not answers(url)
    assert not folder.exists()
