"""One send-rate limiter per worker: N messages/s for the whole bot and M/s per chat.

A message occupies its place in the 1-second window from the moment it is sent until one
window after its response came back. Whatever the network does in between, the receiver sees
message k+N at least one window after message k arrived: no 1-second window at Telegram ever
holds more than N messages (and no chat more than one per 1/M s). Sends are also spaced
evenly (``window / N`` apart) so they do not come in bursts. ``margin_s`` widens the windows.
A 429 from Telegram pauses every sender for ``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable


class RateLimiter:
    def __init__(
        self,
        global_rate: float = 30.0,
        per_chat_rate: float = 1.0,
        *,
        margin_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if global_rate <= 0 or per_chat_rate <= 0:
            raise ValueError("rates must be positive")
        self._limit = max(1, int(global_rate))
        self._window = self._limit / global_rate + margin_s
        self._spacing = self._window / self._limit
        self._chat_interval = 1.0 / per_chat_rate + margin_s
        self._clock = clock
        self._slots: deque[list[float]] = deque()  # [sent, answered]; answered = inf in flight
        self._last_sent = -math.inf
        self._changed = asyncio.Condition()
        self._turn = asyncio.Lock()
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._chat_done: dict[int, float] = {}
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every sender back (Telegram answered 429 with retry_after)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: int | None = None) -> AsyncIterator[None]:
        """Wait for this chat's turn and a global place, then send inside the block."""
        if chat_id is None:
            async with self._global_slot():
                yield
            return
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        try:
            async with lock:
                done = self._chat_done.get(chat_id)
                if done is not None:
                    await self._sleep_until(done + self._chat_interval)
                try:
                    async with self._global_slot():
                        yield
                finally:
                    self._chat_done[chat_id] = self._clock()
        finally:
            self._forget_idle()

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    def _forget_idle(self) -> None:
        if len(self._chat_done) < 10_000:
            return
        cutoff = self._clock() - self._chat_interval
        for chat_id in [c for c, t in self._chat_done.items() if t < cutoff]:
            held = self._chat_locks.get(chat_id)
            if held is None or not held.locked():
                self._chat_locks.pop(chat_id, None)
                self._chat_done.pop(chat_id, None)

    @contextlib.asynccontextmanager
    async def _global_slot(self) -> AsyncIterator[None]:
        entry = await self._take()
        try:
            yield
        finally:
            async with self._changed:
                entry[1] = self._clock()
                self._changed.notify_all()

    async def _take(self) -> list[float]:
        # one sender at a time waits for the next place (the others queue on the lock, in
        # order): a change wakes that one sender, not every sender in the worker
        async with self._turn, self._changed:
            while True:
                now = self._clock()
                while self._slots and self._slots[0][1] + self._window <= now:
                    self._slots.popleft()
                ready = max(self._paused_until, self._last_sent + self._spacing)
                if len(self._slots) >= self._limit:
                    ready = max(ready, self._slots[0][1] + self._window)  # inf: in flight
                if ready <= now:
                    entry = [now, math.inf]
                    self._slots.append(entry)
                    self._last_sent = now
                    return entry
                timeout = None if math.isinf(ready) else ready - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
