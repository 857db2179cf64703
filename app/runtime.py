"""The one composition root: `povtor run` builds the engine, sessions and store once and runs
every service in one TaskGroup until SIGTERM/SIGINT.

Hook points for the parts built elsewhere: pass ``channels`` (a :class:`povtor.ports.Channel`
per :class:`ChannelKind`: the Telegram bot's sender, the call engine) and ``services`` (anything
with ``name`` and ``async run(stop)``: the bot's polling, the SIP engine, background
transcription, the dashboard). They are wired here and nowhere else.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checks import check_database, check_settings
from app.demo.marks import guard_channels
from app.demo.safety import refuse_outside_loopback
from app.erasure import build_erasure, erasure_ledger
from app.health import HealthServer
from app.parts import Adapters, FnService, Runtime, Service
from crm_sync.history.client_batch import load_clients
from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import SqlHistoryStore
from outreach.control import SqlOutreachControl
from outreach.dispatcher import Dispatcher, DispatchSettings
from outreach.followups import Followups
from outreach.holiday_calendar import holiday_check
from outreach.late_outcomes import LateOutcomes
from outreach.listing import AttemptListing
from outreach.metrics import OutreachMetrics, QueueGauges
from outreach.planner import Planner
from outreach.queue import AttemptQueue
from outreach.registry import WorkerRegistry, new_worker_id
from outreach.rules import contact_rules, planning_rules
from outreach.worker_lock import SqliteWorkerLock, sqlite_file
from povtor.clock import SYSTEM_CLOCK, Clock, FastClock
from povtor.db import create_engine, session_factory
from povtor.domain import ChannelKind
from povtor.errors import ConfigError
from povtor.health import HealthState
from povtor.lifecycle import Periodic
from povtor.ports import Channel
from povtor.settings import Settings

log = logging.getLogger(__name__)


def planning_source(sessions: async_sessionmaker[AsyncSession]) -> SqlPlanningSource:
    return SqlPlanningSource(sessions)


def history_store(sessions: async_sessionmaker[AsyncSession]) -> SqlHistoryStore:
    return SqlHistoryStore(sessions)


def worker_clock(settings: Settings) -> Clock:
    """The real clock, or in demo mode the demo's fast clock (contact hours follow it)."""
    start, origin, speed = (
        settings.demo_clock_start, settings.demo_clock_origin, settings.demo_clock_speed
    )  # fmt: skip
    if start is None and origin is None and speed == 1:
        return SYSTEM_CLOCK
    if not settings.demo_mode:
        raise ConfigError("POVTOR_DEMO_CLOCK_* are for `povtor demo` only (POVTOR_DEMO_MODE)")
    if start is None or origin is None:
        raise ConfigError("the demo clock needs POVTOR_DEMO_CLOCK_START and _ORIGIN")
    try:
        return FastClock(origin=origin, start=start, speed=speed)
    except ValueError as err:
        raise ConfigError(f"the demo clock: {err}") from err


async def build(
    stack: AsyncExitStack,
    settings: Settings,
    channels: Mapping[ChannelKind, Channel],
    adapters: Adapters | None = None,
) -> Runtime:
    check_settings(settings)  # every refusal that needs nothing started
    clock = worker_clock(settings)
    if settings.demo_mode:  # before anything is opened: a demo reaches loopback stand-ins only
        refuse_outside_loopback(settings)
    db_file = sqlite_file(settings.db_url)
    if db_file is not None:  # SQLite: one worker, enforced before anything else starts
        db_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stack.enter_context(SqliteWorkerLock(db_file))
    out = settings.outreach
    engine = create_engine(settings.db_url, pool_size=max(5, min(out.concurrency, 20)))
    stack.push_async_callback(engine.dispose)
    await check_database(engine)
    sessions = session_factory(engine)
    worker_id = out.worker_id or new_worker_id()
    store = SqlHistoryStore(sessions)
    registry = CollectorRegistry()
    metrics = OutreachMetrics(registry)
    rules = contact_rules(out, settings.telegram, settings.default_timezone, clock)
    is_holiday = holiday_check(out.holidays_country)
    queue = AttemptQueue(sessions, worker_id=worker_id, lease=timedelta(seconds=out.lease_s))
    followups = Followups(sessions, store)
    sink = LateOutcomes(sessions, on_recorded=followups.wake)
    listing = AttemptListing(sessions)
    workers = WorkerRegistry(sessions, worker_id)
    rt = Runtime(settings, engine, sessions, store, sink, registry, worker_id, workers)
    rt.outreach = SqlOutreachControl(sessions, queue, store, rules)

    async def check() -> dict[str, Any]:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        body: dict[str, Any] = {
            # the worker runs: a part in trouble (a trunk down) degrades it, the reason is listed
            "status": "degraded" if rt.board.problems() else "ok",
            "worker": worker_id,
            "channels": sorted(channels),
            "components": rt.board.as_json(),
        }
        if not channels:  # up, but nobody can be reached: a monitor should say so
            body["status"] = "degraded"
            body["reason"] = (
                "no channel configured (POVTOR_TELEGRAM_BOT_TOKEN, POVTOR_SIP_ENABLED): "
                "attempts are planned but nobody is contacted"
            )
        return body

    # listening before the adapters start: a taken port refuses the start, nothing half-up
    rt.health = HealthServer(registry, settings.metrics_host, settings.metrics_port, check)
    await rt.health.start()
    stack.push_async_callback(rt.health.close)
    if adapters is not None:
        built, services = await adapters(stack, rt)
        channels = {**built, **channels}
        rt.services.extend(services)
    if not settings.demo_mode:  # clients the demo generator made are never contacted for real
        channels = guard_channels(dict(channels))

    source = SqlPlanningSource(sessions)
    dispatcher = Dispatcher(
        queue,
        store,
        channels,
        rules,
        settings=DispatchSettings(
            batch_size=out.batch_size,
            concurrency=out.concurrency,
            poll_interval_s=out.poll_interval_s,
            drain_timeout_s=out.drain_timeout_s,
            max_takeovers=out.max_takeovers,
            channel_down_retry_s=out.channel_down_retry_s,
        ),
        is_holiday=is_holiday,
        metrics=metrics,
        clock=clock.now,
        on_recorded=followups.wake,
        unavailable=rt.board.unavailable,
        clients_in=load_clients,
    )
    rt.board.on_change(lambda c: dispatcher.wake() if c.state is HealthState.OK else None)
    planner = Planner(
        source,
        queue,
        rules,
        planning_rules(out),
        is_holiday=is_holiday,
        channels=channels.keys(),
        batch_size=out.plan_batch_size,
        metrics=metrics,
        clock=clock.now,
        on_planned=dispatcher.wake,
        approval_threshold=out.approval_threshold,
        after_pass=lambda: _each(rt.after_planning),
        erased=erasure_ledger(settings, rt.sessions),
    )
    rt.services.append(
        FnService("registry", lambda stop: workers.run(stop, interval_s=out.heartbeat_s))
    )
    # erasure requests a command left pending (a part failed) are finished here
    erasures = Periodic(
        "erasure requests", build_erasure(settings, sessions).resume, ERASURE_RETRY_S
    )
    rt.services.append(FnService("erasure", erasures.run))
    if out.enabled:
        rt.services.append(
            FnService("planner", lambda stop: planner.run(stop, interval_s=out.plan_interval_s))
        )
        if channels:
            rt.services.append(FnService("dispatcher", dispatcher.run))
        else:
            log.warning("no channels configured: attempts are planned but not dispatched")
        rt.services.append(FnService("followups", followups.run))
    rt.services.append(QueueGauges(metrics, listing, followups))

    rt.services.append(rt.health)
    return rt


def _each(calls: Sequence[Callable[[], None]]) -> None:
    for call in calls:
        call()


async def run(
    settings: Settings,
    *,
    channels: Mapping[ChannelKind, Channel] | None = None,
    services: Sequence[Service] = (),
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    on_ready: Callable[[Runtime], None] | None = None,
    adapters: Adapters | None = None,
) -> None:
    """Run the worker until ``stop`` (or SIGTERM/SIGINT); in-flight work drains on the way out."""
    stop = stop or asyncio.Event()
    async with AsyncExitStack() as stack:
        if handle_signals:  # before anything is built: a SIGTERM during start-up stops cleanly
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
                stack.callback(loop.remove_signal_handler, sig)
        rt = await build(stack, settings, channels or {}, adapters)
        rt.services.extend(services)
        log.info("worker %s starting: %s", rt.worker_id, ", ".join(s.name for s in rt.services))
        if on_ready is not None:
            on_ready(rt)
        async with asyncio.TaskGroup() as tg:
            for service in rt.services:
                tg.create_task(_guarded(service, stop), name=service.name)
        log.info("worker %s stopped", rt.worker_id)


async def _guarded(service: Service, stop: asyncio.Event) -> None:
    """A service that fails stops the whole worker (cleanly), rather than leaving it half-up."""
    try:
        await service.run(stop)
    except Exception:
        log.exception("service %s failed; stopping the worker", service.name)
        stop.set()
        raise
    finally:
        if not stop.is_set():
            log.warning("service %s returned before stop", service.name)


ERASURE_RETRY_S = 600.0  # a pending erasure request is tried again this often
GC_YOUNG_THRESHOLD = 10_000  # Python's default: 700


def settle_heap() -> None:
    """Called once the worker is built. What start-up built (modules, pydantic models of
    aiogram's ~300 types, the wiring) lives as long as the worker: moved out of the collector's
    sight, a full collection walks only what the work allocates (a page of updates paused for
    whole collections of it before). The youngest generation is collected after 10,000 new
    objects instead of 700: with hundreds of updates in flight, a collection every 700 found
    them alive and moved them to the older generations, whose collections then walked them
    again (11-13 % of the bot's CPU per update; 6 % after); the garbage waiting for a collection
    stays a few megabytes."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
