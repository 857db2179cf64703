"""Micro-batching: many coroutines submit items, one loop writes them in one transaction.

Under load this turns a thousand small writes into a few big ones; when idle an item is written
at once. A failed write is retried with backoff (the items stay leased meanwhile), so a short
database outage does not lose outcomes.

While :meth:`Batcher.hold` is on, the batcher writes nothing itself: another loop takes the
items (:meth:`Batcher.take`) into a transaction of its own and then says they are written
(:meth:`Batcher.written`) or gives them back (:meth:`Batcher.put_back`).
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
        self._pending: list[tuple[T, asyncio.Future[None] | None]] = []
        self._unwritten = 0  # queued, or taken and not said written yet
        self._wake = asyncio.Event()
        self._closed = False
        self._held = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def unwritten(self) -> int:
        """Items queued or taken whose write has not been confirmed yet."""
        return self._unwritten

    def hold(self, held: bool) -> None:
        """With ``held``, items wait for :meth:`take`; without, the batcher writes them."""
        self._held = held
        self._wake.set()

    def take(self, limit: int) -> list[tuple[T, asyncio.Future[None] | None]]:
        """Up to ``limit`` items (oldest first), to be written elsewhere."""
        taken = self._pending[:limit]
        del self._pending[:limit]
        return taken

    def written(self, taken: list[tuple[T, asyncio.Future[None] | None]]) -> None:
        """Taken items are written: their submitters go on."""
        self._unwritten -= len(taken)
        for _, future in taken:
            if future is not None and not future.done():
                future.set_result(None)

    def put_back(self, taken: list[tuple[T, asyncio.Future[None] | None]]) -> None:
        """Taken items were not written: first in line again."""
        self._pending[:0] = taken
        self._wake.set()

    def put(self, item: T) -> None:
        """Queue ``item`` without waiting for its write (:attr:`unwritten` counts it until
        it is written)."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        self._pending.append((item, None))
        self._unwritten += 1
        self._wake.set()

    async def submit(self, item: T) -> None:
        """Queue ``item`` and wait until it is written."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._unwritten += 1
        self._wake.set()
        # A submitter cancelled while it waits cancels only its own future: the item stays
        # queued and is written (``written`` passes over futures already done).
        await future

    def close(self) -> None:
        """Stop taking items; ``run`` returns once everything queued is written."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not (self._held and not self._closed):
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
                self.written(chunk)
            if self._closed:
                return
