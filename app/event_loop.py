"""The event loop `povtor run` runs on: uvloop (libuv) where it is installed, else asyncio's.

A worker in calls handles 50 RTP packets a second each way per call; on asyncio's selector
loop every datagram received costs ~12 us of loop overhead (the selector, a handle, a Python
``recvfrom``), on uvloop ~2 us (`scripts/bench_calls.py --loop`, docs/voice.md): at 500 calls
that is a third of a core. Everything else in the worker (aiohttp, asyncpg, aiosqlite,
aiogram, subprocesses, signals) runs on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: str = "uvloop") -> LoopFactory | None:
    """uvloop's loop factory, or None (asyncio's own loop) for ``asyncio`` or without uvloop."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, _T], name: str = "uvloop") -> _T:
    """``asyncio.run`` on the loop ``name`` (``uvloop`` when installed, or ``asyncio``)."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
