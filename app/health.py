"""The worker's HTTP face for operators: ``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


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
            status = 200 if body.get("status") == "ok" else 503
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
