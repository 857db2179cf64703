"""One send-rate limiter per worker: N messages/s for the whole bot and M/s per chat.

Sends are spaced evenly (``window / limit`` apart) and also checked against a sliding window,
so no 1-second window ever holds more than ``limit`` messages even when requests bunch up a
little on the way; ``margin_s`` widens the window to absorb that jitter. A 429 from Telegram
pauses every sender for ``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        global_rate: float = 30.0,
        per_chat_rate: float = 1.0,
        *,
        margin_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if global_rate <= 0 or per_chat_rate <= 0:
            raise ValueError("rates must be positive")
        self._limit = max(1, int(global_rate))
        self._window = self._limit / global_rate + margin_s
        self._spacing = self._window / self._limit
        self._chat_interval = 1.0 / per_chat_rate + margin_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._global = asyncio.Lock()
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._chat_last: dict[int, float] = {}
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every sender back (Telegram answered 429 with retry_after)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def acquire(self, chat_id: int | None = None) -> None:
        """Wait for this chat's turn and a global slot; the caller sends right after."""
        if chat_id is None:
            await self._acquire_global()
            return
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        try:
            async with lock:
                last = self._chat_last.get(chat_id)
                if last is not None:
                    await self._sleep_until(last + self._chat_interval)
                await self._acquire_global()
                self._chat_last[chat_id] = self._clock()
        finally:
            self._forget_idle(chat_id, lock)

    def _forget_idle(self, chat_id: int, lock: asyncio.Lock) -> None:
        if not lock.locked() and self._chat_locks.get(chat_id) is lock:
            # Keep the last send time only while it still matters.
            last = self._chat_last.get(chat_id, 0.0)
            if self._clock() - last >= self._chat_interval:
                self._chat_locks.pop(chat_id, None)
                self._chat_last.pop(chat_id, None)
        if len(self._chat_last) > 10_000:
            cutoff = self._clock() - self._chat_interval
            for key in [k for k, v in self._chat_last.items() if v < cutoff]:
                held = self._chat_locks.get(key)
                if held is None or not held.locked():
                    self._chat_locks.pop(key, None)
                    self._chat_last.pop(key, None)

    async def _acquire_global(self) -> None:
        async with self._global:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self._window:
                    self._sent.popleft()
                ready = max(
                    self._paused_until,
                    self._sent[-1] + self._spacing if self._sent else now,
                    self._sent[0] + self._window if len(self._sent) >= self._limit else now,
                )
                if ready <= now:
                    self._sent.append(now)
                    return
                await self._sleep_until(ready)
