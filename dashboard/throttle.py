"""Login throttling: after repeated failures a login (and an address) is locked for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_LOCKOUT_S = 3600.0
MAX_KEYS = 10_000  # forget the oldest entries beyond this (a flood of random logins)


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Counts failures per key ("login:anna", "ip:10.0.0.7"); a success clears the login's count.

    After ``max_failures`` failures the key is locked for ``lockout_s``, doubling with every
    further failure (up to an hour). Failures older than an hour without a new one are forgotten.
    """

    def __init__(
        self,
        max_failures: int,
        lockout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._lockout = lockout_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0 = now)."""
        now = self._clock()
        waits = [self._entries[k].locked_until - now for k in keys if k in self._entries]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            entry = self._entries.pop(key, None) or _Entry()
            if now - entry.last_failure > MAX_LOCKOUT_S:
                entry = _Entry()
            entry.failures += 1
            entry.last_failure = now
            over = entry.failures - self._max
            if over >= 0:
                entry.locked_until = now + min(self._lockout * 2**over, MAX_LOCKOUT_S)
            self._entries[key] = entry  # re-inserted: dict order is oldest failure first
        while len(self._entries) > MAX_KEYS:
            del self._entries[next(iter(self._entries))]

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)
