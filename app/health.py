"""The worker's HTTP face for operators: ``/healthz`` and Prometheus ``/metrics``.

``/healthz`` answers 200 while the worker can work (``"status": "ok"``, or ``"degraded"`` when a
component reported trouble: a trunk not answering, a registration failing, the dashboard's port
taken; each is listed under ``components`` with its reason) and 503 when the database does not
answer. The port is bound before any service starts: a taken port refuses the start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.checks import bind_error
from povtor.errors import ConfigError
from povtor.lifecycle import listen

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
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(5):
                body = await self._check()
            status = 200 if body.get("status") in ("ok", "degraded") else 503
        except Exception as err:
            body, status = {"status": "error", "error": type(err).__name__}, 503
        return web.json_response(body, status=status, dumps=json.dumps)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(self) -> None:
        """Listen now (before the services start); a taken port is a refusal naming the setting."""
        runner = web.AppRunner(self.app(), access_log=None)
        try:
            self.bound_port = await listen(runner, self.host, self.port)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} for /healthz and /metrics "
                f"({bind_error(err)}): set POVTOR_METRICS_PORT (and POVTOR_METRICS_HOST)"
            ) from None
        self._runner = runner
        log.info("health and metrics on http://%s:%s", self.host, self.bound_port)
        self.ready.set()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if self._runner is None:
                await self.start()
            await stop.wait()
        finally:
            await self.close()
