"""Fixtures for call-engine tests against real SIP peers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from voice.engine import CallEngine
from voice.recording import CallRecorder, RecordingWriter
from voice.sip.trunks import TrunkConfig

EngineFactory = Callable[..., Any]


def trunk_for(port: int, **overrides: Any) -> TrunkConfig:
    """A trunk pointing at a peer on loopback, with ephemeral SIP and RTP ports."""
    fields: dict[str, Any] = {
        "name": "test",
        "proxy": f"127.0.0.1:{port}",
        "local_host": "127.0.0.1",
        "local_port": 0,
        "rtp_port_min": 0,
        "calls_per_second": 100,
    }
    fields.update(overrides)
    return TrunkConfig.model_validate(fields)


@pytest.fixture
def writer() -> Any:
    with RecordingWriter(threads=1) as w:
        yield w


@pytest.fixture
def engine_for(tmp_path: Path, writer: RecordingWriter) -> EngineFactory:
    """``async with engine_for(port, record=True, **trunk_fields) as engine``."""

    @asynccontextmanager
    async def factory(port: int, record: bool = False, **fields: Any) -> AsyncIterator[CallEngine]:
        folder = tmp_path / "recordings"

        def recorder(call_uuid: str) -> CallRecorder:
            return CallRecorder.open(folder, call_uuid, writer=writer)

        trunk = trunk_for(port, **fields)
        async with CallEngine(
            {trunk.name: trunk}, recorder_factory=recorder if record else None
        ) as engine:
            yield engine

    return factory
