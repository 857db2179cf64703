"""The dashboard as a service of the worker: serves until ``stop``.

A dashboard that cannot listen (port 8080 is often taken) does not stop the worker: calls and
the bot go on, the trouble is reported on ``/healthz`` (component ``dashboard``) and in one
warning naming ``POVTOR_DASHBOARD_PORT``, and the port is tried again every
``RETRY_BIND_S`` until it is free.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

from aiohttp import web

from dashboard.access_log import SafeAccessLogger
from dashboard.app import build_app
from dashboard.users import UserStore
from povtor.health import HealthBoard, HealthState
from povtor.lifecycle import bound_port, wait_or_stop
from povtor.ports import (
    CallHistory,
    ClientEraser,
    CrmSyncView,
    DeadLetters,
    HealthFeed,
    HistoryStore,
    OutreachControl,
    Reports,
    RetentionView,
)
from povtor.settings import Settings

log = logging.getLogger(__name__)

RETRY_BIND_S = 30.0


class DashboardService:
    name = "dashboard"

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        reports: Reports,
        calls: CallHistory | None = None,
        *,
        users: UserStore,
        crm: CrmSyncView | None = None,
        retention: RetentionView | None = None,
        outreach: OutreachControl | None = None,
        transcription_off: str | None = None,
        health: HealthBoard | None = None,
        dead_letters: Sequence[DeadLetters] = (),
        shared_health: HealthFeed | None = None,
        erasure: ClientEraser | None = None,
        retry_bind_s: float = RETRY_BIND_S,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.health = health or HealthBoard()
        self.retry_bind_s = retry_bind_s
        self.reuse_port = reuse_port  # several processes serve one port (SO_REUSEPORT)
        self.app = build_app(
            settings,
            store,
            reports,
            calls,
            users=users,
            crm=crm,
            retention=retention,
            transcription_off=transcription_off,
            health=self.health,
            outreach=outreach,
            dead_letters=dead_letters,
            shared_health=shared_health,
            erasure=erasure,
        )
        self.bound_port: int | None = None
        self.ready = asyncio.Event()  # set once the port is listening

    async def run(self, stop: asyncio.Event) -> None:
        ds = self.settings.dashboard
        runner = web.AppRunner(self.app, access_log_class=SafeAccessLogger)
        await runner.setup()
        try:
            while not stop.is_set():
                site = web.TCPSite(runner, ds.host, ds.port, reuse_port=self.reuse_port or None)
                try:
                    await site.start()
                    break
                except OSError as err:
                    why = os.strerror(err.errno) if err.errno else str(err)
                    self.health.report(
                        self.name,
                        HealthState.DOWN,
                        f"cannot listen on {ds.host}:{ds.port} ({why}); "
                        "set POVTOR_DASHBOARD_PORT, the rest of the worker runs",
                    )
                await wait_or_stop(stop, self.retry_bind_s)
            else:
                return
            self.bound_port = bound_port(site, ds.port)
            self.health.ok(self.name)
            log.info("dashboard on http://%s:%s", ds.host, self.bound_port)
            self.ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()
