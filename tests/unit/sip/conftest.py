"""The media tests here run on both event loops: asyncio's own and uvloop, the one `povtor run`
uses (app/event_loop.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
import uvloop

from app.event_loop import LoopFactory


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
