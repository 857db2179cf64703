"""The dashboard as the worker serves it, from one process or several
(``POVTOR_DASHBOARD_PROCESSES``).

With N > 1 the worker serves the dashboard itself and starts N-1 processes of this module that
serve it on the same port (SO_REUSEPORT: the kernel spreads connections over them), each with a
small pool of its own. What a user or an attacker meets is the same whichever process answers:
every request reads its session from the database (no per-process cache, so signing out, a new
role or password, a disabled user hold everywhere at once), failed sign-ins are counted in the
database, and the worker publishes its components' health (a trunk down) through the
:class:`povtor.ports.HealthFeed` port, which every process's overview reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.erasure import build_erasure
from app.parts import Runtime, Service
from crm_sync.history.store import SqlHistoryStore
from povtor.health import HealthBoard
from povtor.lifecycle import wait_for_first, wait_or_stop
from povtor.ports import CallHistory, DeadLetters, HealthFeed, OutreachControl
from povtor.settings import Settings

log = logging.getLogger(__name__)

CHILD_POOL = 5  # connections of each extra process (max_connections is shared)
RESTART_AFTER_S = 5.0  # an extra process that died is started again after this
STOP_WAIT_S = 10.0  # then it is killed


def call_history(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CallHistory:
    from voice.call_history import SqlCallHistory
    from voice.storage import storages_from_settings

    cache = settings.recording_cache_dir
    return SqlCallHistory(sessions, storages_from_settings(settings), cache)


def build_dashboard(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    store: SqlHistoryStore,
    *,
    worker_id: str,
    board: HealthBoard,
    calls: CallHistory | None,
    outreach: OutreachControl | None,
    transcription_off: str | None,
) -> tuple[Service, HealthFeed | None]:
    """One process's dashboard service over the ports, and the feed of the worker's health
    when several processes serve it (None with one: the overview reads ``board``)."""
    from bot.outbox_dead import OutboxDeadLetters
    from crm_sync.history.retention_view import SqlRetentionView
    from crm_sync.metrics.reports import SqlReports
    from crm_sync.outbound.build import crm_kind
    from crm_sync.outbound.dead import CrmDeadLetters
    from crm_sync.outbound.view import SqlCrmSyncView
    from dashboard.service import DashboardService
    from dashboard.shared_health import SqlHealthFeed
    from dashboard.users import UserStore
    from voice.transcript_dead import TranscriptDeadLetters

    shared = settings.dashboard.processes > 1
    connector = crm_kind(settings.crm)
    dead_letters: list[DeadLetters] = [
        OutboxDeadLetters(sessions),
        TranscriptDeadLetters(sessions),
    ]
    if connector is not None:
        dead_letters.insert(0, CrmDeadLetters(sessions, connector))
    feed = SqlHealthFeed(sessions, worker_id) if shared else None
    service = DashboardService(
        settings,
        store,
        SqlReports(engine, settings.default_timezone),
        calls,
        users=UserStore(sessions, cache_s=0.0) if shared else UserStore(sessions),
        crm=SqlCrmSyncView(sessions, connector),
        retention=SqlRetentionView(engine, store, settings.default_timezone),
        transcription_off=transcription_off,
        health=board,
        outreach=outreach,
        dead_letters=dead_letters,
        shared_health=feed,
        erasure=build_erasure(settings, sessions),
        reuse_port=shared,
    )
    return service, feed


def worker_dashboard(
    rt: Runtime, calls: CallHistory | None, transcription_off: str | None
) -> list[Service]:
    """The worker's own dashboard and, with several processes, the others and the publisher
    of the worker's health."""
    service, feed = build_dashboard(
        rt.settings,
        rt.engine,
        rt.sessions,
        rt.store,
        worker_id=rt.worker_id,
        board=rt.board,
        calls=calls,
        outreach=rt.outreach,
        transcription_off=transcription_off,
    )
    if feed is None:
        return [service]
    extra = rt.settings.dashboard.processes - 1
    argv = [sys.executable, "-m", __name__, "--worker", rt.worker_id]
    if transcription_off is not None:
        argv += ["--transcription-off", transcription_off]
    return [HealthPublisher(rt.board, feed), service, DashboardProcesses(argv, extra)]


class HealthPublisher:
    """Publishes the board through the feed at start and after every change; at stop, clears
    it (a stopped worker has no components)."""

    name = "health-publisher"

    def __init__(self, board: HealthBoard, feed: HealthFeed, retry_s: float = 5.0) -> None:
        self._board = board
        self._feed = feed
        self._retry_s = retry_s
        self._changed = asyncio.Event()
        board.on_update(self._changed.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._changed.set()
        while not stop.is_set():
            if self._changed.is_set():
                self._changed.clear()
                try:
                    await self._feed.publish(list(self._board.components.values()))
                except Exception as err:  # the database is away: tried again shortly
                    log.warning("the worker's health not published: %s", err)
                    self._changed.set()
                    await wait_or_stop(stop, self._retry_s)
                    continue
            await wait_for_first(stop, self._changed)
        with contextlib.suppress(Exception):
            await self._feed.publish([])


class DashboardProcesses:
    """Runs ``count`` dashboard processes (``argv``) until stop; one that dies is started again
    after ``RESTART_AFTER_S``. At stop each gets SIGTERM, and SIGKILL after ``STOP_WAIT_S``."""

    name = "dashboard-processes"

    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.count = count
        self.started: list[asyncio.subprocess.Process] = []  # every process started, in order
        self.running = asyncio.Event()  # set once all ``count`` have been started

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for number in range(self.count):
                tg.create_task(self._keep(number, stop))

    async def _keep(self, number: int, stop: asyncio.Event) -> None:
        while not stop.is_set():
            process = await asyncio.create_subprocess_exec(*self.argv)
            self.started.append(process)
            if len(self.started) >= self.count:
                self.running.set()
            waiting = asyncio.ensure_future(process.wait())
            await wait_for_first(stop, _done(waiting))
            if waiting.done():
                log.warning(
                    "dashboard process %d (pid %d) ended with %s; starting it again in %.0f s",
                    number + 2,
                    process.pid,
                    process.returncode,
                    RESTART_AFTER_S,
                )
                await wait_or_stop(stop, RESTART_AFTER_S)
                continue
            process.terminate()
            try:
                async with asyncio.timeout(STOP_WAIT_S):
                    await waiting
            except TimeoutError:
                log.warning("dashboard process pid %d did not stop: killed", process.pid)
                process.kill()
                await waiting


def _done(task: asyncio.Future[int]) -> asyncio.Event:
    event = asyncio.Event()
    task.add_done_callback(lambda _: event.set())
    return event


async def serve(settings: Settings, worker_id: str, transcription_off: str | None) -> None:
    """One extra process: the dashboard over its own small pool until SIGTERM."""
    from app.runtime import history_store, worker_clock
    from outreach.control import SqlOutreachControl
    from outreach.queue import AttemptQueue
    from outreach.rules import contact_rules
    from povtor.db import create_engine, session_factory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.db_url, pool_size=CHILD_POOL)
    try:
        sessions = session_factory(engine)
        store = history_store(sessions)
        out = settings.outreach
        rules = contact_rules(
            out, settings.telegram, settings.default_timezone, worker_clock(settings)
        )
        queue = AttemptQueue(sessions, worker_id=worker_id, lease=timedelta(seconds=out.lease_s))
        service, _feed = build_dashboard(
            settings,
            engine,
            sessions,
            store,
            worker_id=worker_id,
            board=HealthBoard(),
            calls=call_history(settings, sessions) if settings.sip.enabled else None,
            outreach=SqlOutreachControl(sessions, queue, store, rules),
            transcription_off=transcription_off,
        )
        await service.run(stop)
    finally:
        await engine.dispose()


def main(args: list[str] | None = None) -> None:
    from app import event_loop
    from povtor.logs import setup_logging

    parser = argparse.ArgumentParser(description="one more process serving the dashboard")
    parser.add_argument("--worker", required=True, help="the id of the worker it serves for")
    parser.add_argument("--transcription-off", default=None)
    opts = parser.parse_args(args)
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format, settings.log_library_level)
    event_loop.run(serve(settings, opts.worker, opts.transcription_off))


if __name__ == "__main__":
    main()
