"""What the fake CRM APIs share: an aiohttp server on 127.0.0.1 that can go down (the port
refuses connections) and come back on the same port, answer 5xx, or carry a request out and
lose the answer (the connection drops before the response: the client cannot know)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    method: str  # REST method or "VERB /path"
    at: float  # time.monotonic() when it arrived
    status: int  # what was answered (0: the answer was lost)


class FakeCrmServer:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.base_url = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._fail: list[tuple[int, frozenset[str] | None]] = []
        self._lose: list[frozenset[str] | None] = []
        self._hold: list[tuple[frozenset[str], asyncio.Event]] = []
        self._released = asyncio.Event()
        self._changed = asyncio.Condition()

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await self._listen()
        return self.base_url

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        sockets = self._site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- switches ----------------------------------------------------------------------------

    async def go_down(self) -> None:
        """Stop listening and drop open connections: connections are refused until
        :meth:`come_up`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for conn in list(self._runner.server.connections):
                conn.force_close()

    async def come_up(self) -> None:
        if self._site is None:
            await self._listen()

    def fail_next(self, count: int, status: int = 500, methods: set[str] | None = None) -> None:
        """The next ``count`` requests (of ``methods``, or any) answer ``status``, unapplied."""
        self._fail += [(status, frozenset(methods) if methods else None)] * count

    def lose_answers(self, count: int, methods: set[str] | None = None) -> None:
        """The next ``count`` requests (of ``methods``) are carried out, then the connection
        drops before the answer."""
        self._lose += [frozenset(methods) if methods else None] * count

    def hold(self, methods: set[str]) -> asyncio.Event:
        """The next request of ``methods`` is carried out and then gets no answer until
        :meth:`release` (then its connection drops); the event is set when it has arrived."""
        arrived = asyncio.Event()
        self._hold.append((frozenset(methods), arrived))
        return arrived

    def release(self) -> None:
        self._released.set()

    # -- for subclasses ----------------------------------------------------------------------

    async def after_applying(self, method: str, request: web.Request) -> bool:
        """Lost or held answers: True when the handler must not answer."""
        for i, (methods, arrived) in enumerate(self._hold):
            if method in methods:
                del self._hold[i]
                await self.record(method, 0)
                arrived.set()
                await self._released.wait()
                drop_connection(request)
                return True
        if self.answer_lost(method):
            await self.record(method, 0)
            drop_connection(request)
            return True
        return False

    def injected_failure(self, method: str) -> int | None:
        for i, (status, methods) in enumerate(self._fail):
            if methods is None or method in methods:
                del self._fail[i]
                return status
        return None

    def answer_lost(self, method: str) -> bool:
        for i, methods in enumerate(self._lose):
            if methods is None or method in methods:
                del self._lose[i]
                return True
        return False

    async def record(self, method: str, status: int) -> None:
        async with self._changed:
            self.received.append(Received(method, time.monotonic(), status))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20.0) -> None:
        """Until ``predicate()`` holds (checked at every request), or TimeoutError."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    def count(self, method: str, status: int | None = None) -> int:
        return sum(
            1
            for r in self.received
            if r.method == method and (status is None or r.status == status)
        )


def drop_connection(request: web.Request) -> None:
    """Close the socket without an answer (the operation itself was carried out)."""
    transport = request.transport
    if transport is not None:
        transport.close()
