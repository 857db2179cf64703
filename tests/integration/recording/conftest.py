"""Fixtures for calls and recordings: the call store over the test database, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.db import session_factory
from voice.call_store import CallStore
from voice.recording import RecordingWriter
from voice.storage import S3Storage

BUCKET = "povtor-recordings"


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 API over real HTTP on a free loopback port, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    return S3Storage(
        BUCKET, endpoint_url=s3_endpoint, access_key="test", secret_key="test", max_attempts=1
    )
