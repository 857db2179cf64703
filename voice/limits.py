"""Trunk limits: concurrent calls (a semaphore) and calls per second (a token bucket)."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Allows ``rate`` acquisitions per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            while self._tokens < 1:
                # Rate limiting: the wait itself is the point, not a synchronisation
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


class TrunkLimits:
    """What a trunk allows: at most ``max_calls`` at once, ``cps`` new calls per second."""

    def __init__(self, max_calls: int, cps: float) -> None:
        self.max_calls = max_calls
        self._slots = asyncio.Semaphore(max_calls)
        self._bucket = TokenBucket(cps)
        self.active = 0

    async def acquire(self) -> None:
        await self._slots.acquire()
        try:
            await self._bucket.acquire()
        except BaseException:
            self._slots.release()
            raise
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._slots.release()
