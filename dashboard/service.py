"""The dashboard as a service of the worker: serves until ``stop``."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from dashboard.access_log import SafeAccessLogger
from dashboard.app import build_app
from dashboard.users import UserStore
from povtor.ports import CallHistory, ChannelHealth, CrmSyncView, HistoryStore, Reports
from povtor.settings import Settings

log = logging.getLogger(__name__)


class DashboardService:
    name = "dashboard"

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        reports: Reports,
        calls: CallHistory | None = None,
        *,
        users: UserStore | None = None,
        crm: CrmSyncView | None = None,
        health: ChannelHealth | None = None,
    ) -> None:
        self.settings = settings
        self.app = build_app(settings, store, reports, calls, users=users, crm=crm, health=health)
        self.bound_port: int | None = None
        self.ready = asyncio.Event()  # set once the port is listening

    async def run(self, stop: asyncio.Event) -> None:
        ds = self.settings.dashboard
        runner = web.AppRunner(self.app, access_log_class=SafeAccessLogger)
        await runner.setup()
        try:
            site = web.TCPSite(runner, ds.host, ds.port)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else ds.port
            log.info("dashboard on http://%s:%s", ds.host, self.bound_port)
            self.ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()
