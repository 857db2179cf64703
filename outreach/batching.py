"""Micro-batching: many coroutines submit items, one loop writes them in one transaction.

Under load this turns a thousand small writes into a few big ones; when idle an item is written
at once. A failed write is retried with backoff (the items stay leased meanwhile), so a short
database outage does not lose outcomes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Batcher(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = 500,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._max_backoff_s = max_backoff_s
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closed = False

    async def submit(self, item: T) -> None:
        """Queue ``item`` and wait until it is written."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        await asyncio.shield(future)

    def close(self) -> None:
        """Stop taking items; ``run`` returns once everything queued is written."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                chunk = self._pending[: self._max_batch]
                try:
                    await self._flush([item for item, _ in chunk])
                except Exception:  # keep the items: the database may come back
                    log.exception("batched write of %d items failed; retrying", len(chunk))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
                    continue
                backoff = 0.05
                del self._pending[: len(chunk)]
                for _, future in chunk:
                    if not future.done():
                        future.set_result(None)
            if self._closed:
                return
