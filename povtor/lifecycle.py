"""How long-running parts of the worker wait, repeat and serve until the worker stops.

Every service runs as ``async run(stop)`` and must return soon after ``stop`` is set; these are
the three shapes they take, written once: wait for a while unless stopped, do something every
interval (a failure is logged and the next round retries: one bad round must not end a sweeper),
and serve an aiohttp application until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True as soon as ``stop`` is set, False when the time ran out."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def wait_for_first(*events: asyncio.Event, within: float | None = None) -> None:
    """Wait until any of ``events`` is set (a stop, a wake-up), at most ``within`` seconds
    (None: as long as it takes)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


@dataclass
class Periodic:
    """Runs ``fn`` now and then every ``interval_s`` until stopped; a failed round is logged
    (with its traceback, for the operator) and the next round tries again. With ``wake``, a
    round also starts as soon as that event is set (``fn`` clears it when it has seen it)."""

    name: str
    fn: Callable[[], Awaitable[Any]]
    interval_s: float
    wake: asyncio.Event | None = None
    rounds: int = field(default=0, init=False)  # finished rounds, failed or not

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.fn()
            except Exception:
                log.exception("%s failed; next try in %.0f s", self.name, self.interval_s)
            self.rounds += 1
            if self.wake is None:
                await wait_or_stop(stop, self.interval_s)
            else:
                await wait_for_first(stop, self.wake, within=self.interval_s)


async def listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Set ``runner`` up and listen on ``host:port``; the bound port (the one the OS picked
    when asked for 0). When it cannot listen the runner is cleaned up and the error raised."""
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return bound_port(site, port)


async def serve_until_stop(
    runner: web.AppRunner,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve ``runner``'s application on ``host:port`` until ``stop``; then clean up.

    ``on_listening`` gets the bound port (useful with port 0) once the socket accepts
    connections, before this waits for the stop.
    """
    bound = await listen(runner, host, port)
    try:
        if on_listening is not None:
            on_listening(bound)
        await stop.wait()
    finally:
        await runner.cleanup()


def bound_port(site: web.TCPSite, asked: int) -> int:
    """The port the site listens on (the one the OS picked when asked for 0)."""
    server = site._server  # aiohttp has no public accessor for the listening sockets
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else asked
