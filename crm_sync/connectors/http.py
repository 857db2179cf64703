"""The HTTP edge shared by the connectors: one aiohttp session, a client-side rate limiter,
library errors translated into :mod:`crm_sync.connectors.errors`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from crm_sync.connectors.errors import CrmTransient

USER_AGENT = "Povtor-CRM-sync/1"


class RateLimiter:
    """A token bucket: ``burst`` requests at once, then ``rate`` per second. After the CRM
    answers "too many requests", :meth:`pause` holds every request back for a while."""

    def __init__(
        self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        async with self._lock:  # requests leave in order, each waiting for its token
            while True:
                now = self._clock()
                self._refill(now)
                wait = self._paused_until - now
                if wait <= 0 and self._tokens >= 1:
                    self._tokens -= 1
                    return
                if wait <= 0:
                    wait = (1 - self._tokens) / self.rate
                await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """No request for ``seconds``, then start again from an empty bucket."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._last = max(now, self._paused_until)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: Any  # parsed JSON, the text when it is not JSON, None when empty
    headers: Mapping[str, str]

    def retry_after(self, default: float) -> float:
        value = self.headers.get("Retry-After", "")
        try:
            return max(0.0, float(value))
        except ValueError:
            return default


class CrmHttp:
    """One CRM's HTTP client. ``label`` names the CRM in error messages."""

    def __init__(self, label: str, limiter: RateLimiter, *, timeout_s: float = 30.0) -> None:
        self.label = label
        self.limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request, when the limiter lets it go. Raises :class:`CrmTransient` when no
        answer came back."""
        await self.limiter.acquire()
        try:
            async with self._client().request(
                method, url, json=json_body, params=params, headers=headers
            ) as resp:
                raw = await resp.read()
                return Response(resp.status, _parse(raw), dict(resp.headers))
        except aiohttp.ClientConnectorError as err:  # nothing was sent
            raise CrmTransient(f"{self.label} unreachable: {type(err).__name__}") from err
        except (TimeoutError, aiohttp.ClientError) as err:  # sent, answer lost
            raise CrmTransient(
                f"{self.label} did not answer: {type(err).__name__}", maybe_applied=True
            ) from err

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
