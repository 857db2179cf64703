"""The worker's HTTP face for operators: ``/healthz`` and Prometheus ``/metrics``; and the
board where its parts say whether they work (:class:`HealthBoard`)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from povtor.db import utcnow
from povtor.domain import ChannelKind
from povtor.ports import PartStatus

log = logging.getLogger(__name__)
HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


class HealthBoard:
    """Implements :class:`povtor.ports.ChannelHealth` in memory, for one worker: the last
    report of each part wins; ``since`` moves only when the state changes."""

    def __init__(self) -> None:
        self._parts: dict[str, PartStatus] = {}
        self._listeners: list[Callable[[PartStatus], None]] = []

    def report(
        self, part: str, *, ok: bool, state: str, reason: str = "", usable: bool | None = None
    ) -> None:
        before = self._parts.get(part)
        since = before.since if before is not None and before.state == state else utcnow()
        now = PartStatus(part, ok, state, reason, since, ok if usable is None else usable)
        self._parts[part] = now
        if before is None or before.state != state:
            for listener in self._listeners:
                listener(now)

    def status(self, part: str) -> PartStatus | None:
        return self._parts.get(part)

    def statuses(self) -> Sequence[PartStatus]:
        return sorted(self._parts.values(), key=lambda s: s.part)

    def on_change(self, listener: Callable[[PartStatus], None]) -> None:
        self._listeners.append(listener)

    def unavailable(self, channel: ChannelKind) -> str | None:
        """Why the dispatcher should hold this channel's attempts back now, or None."""
        status = self._parts.get(channel.value)
        if status is None or status.usable:
            return None
        return status.reason or status.state

    def summary(self) -> dict[str, Any]:
        """For ``/healthz``: ``degraded`` names each part that does not work, with the reason."""
        return {
            "parts": {
                s.part: {"ok": s.ok, "state": s.state, "reason": s.reason, "since": _iso(s)}
                for s in self.statuses()
            },
            "degraded": {s.part: s.reason or s.state for s in self.statuses() if not s.ok},
        }


def _iso(status: PartStatus) -> str:
    return status.since.isoformat(timespec="seconds")


class HealthServer:
    """Serves until ``stop``; a failing or slow health check answers 503."""

    name = "http"

    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, check: HealthCheck
    ) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._check = check
        self.bound_port: int | None = None
        self.ready = asyncio.Event()  # set once the port is listening

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(5):
                body = await self._check()
            # degraded (a channel away) is still a live worker: 200, so that an orchestrator
            # does not restart it for something a restart cannot fix
            status = 200 if body.get("status") in ("ok", "degraded") else 503
        except Exception as err:
            body, status = {"status": "error", "error": type(err).__name__}, 503
        return web.json_response(body, status=status, dumps=json.dumps)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def run(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
            log.info("health and metrics on http://%s:%s", self.host, self.bound_port)
            self.ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()
