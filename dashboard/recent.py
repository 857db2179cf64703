"""Slow figures reused for a short while: the repeat-sales report and the reason counts take
whole-table aggregates, and twenty managers opening the same page should not run twenty."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class Recent:
    """Results by key for ``ttl_s`` seconds; concurrent misses of one key share one read.

    A failed read is not kept: the next request tries again. At most ``size`` keys (the oldest
    dropped), so arbitrary periods in the query string cannot grow it without bound."""

    def __init__(
        self, ttl_s: float, size: int = 64, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._size = size
        self._clock = clock
        self._kept: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        if self._ttl <= 0:
            return await read()
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self._ttl:
            return await asyncio.shield(kept[1])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._kept[key] = (now, future)
        while len(self._kept) > self._size:
            del self._kept[next(iter(self._kept))]
        try:
            value = await read()
        except asyncio.CancelledError:
            self._kept.pop(key, None)
            future.cancel()
            raise
        except Exception as err:
            self._kept.pop(key, None)
            future.set_exception(err)
            future.exception()  # retrieved: waiting requests get it, the loop does not warn
            raise
        future.set_result(value)
        return value
