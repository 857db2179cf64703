"""The adapters' half of the composition root: builds the bot, the call engine and its channel,
background transcription, recording retention, the dashboard and the CRM sync from settings, for
:func:`app.runtime.run` (:mod:`app.worker` starts the two together). Each part is built only when
configured, and everything it opens is closed through the runtime's exit stack.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from app.parts import FnService, Runtime, Service
from povtor.db import is_sqlite, utcnow
from povtor.domain import ChannelKind
from povtor.errors import ModelError
from povtor.lifecycle import Periodic
from povtor.ports import Channel, Transcriber

log = logging.getLogger(__name__)

CALL_RECOVERY_INTERVAL_S = 60.0


async def build_adapters(
    stack: AsyncExitStack, rt: Runtime
) -> tuple[dict[ChannelKind, Channel], list[Service]]:
    from crm_sync.metrics.reports import SqlReports

    settings = rt.settings
    channels: dict[ChannelKind, Channel] = {}
    services: list[Service] = []
    reports = SqlReports(rt.engine, settings.default_timezone)
    calls = None

    if settings.sip.enabled:
        call_channel, call_services, calls = await _voice(stack, rt)
        channels[ChannelKind.CALL] = call_channel
        services.extend(call_services)
    else:  # calls left active by a worker that had SIP are recovered all the same
        services.extend(await _call_recovery(rt, at_start=False))
    transcription_off: str | None = "фоновая расшифровка выключена (POVTOR_ASR_BACKGROUND)"
    if settings.asr.background:
        transcription, transcription_off = _background_transcription(rt)
        services.extend(transcription)
    if settings.telegram.enabled:
        from bot.service import BotService

        bot = BotService(
            settings,
            rt.store,
            reports,
            rt.outcome_sink,
            _voice_message_transcriber(stack, rt),
            sessions=rt.sessions,
            health=rt.board,
            worker_id=rt.worker_id,
        )
        stack.push_async_callback(bot.close)  # also when the worker dies before it runs
        await bot.probe()  # the dispatcher knows whether Telegram answers before it sends
        channels[ChannelKind.TELEGRAM] = bot.channel
        services.append(FnService("telegram-bot", bot.run))
    if settings.dashboard.enabled:
        from app.dashboard_processes import worker_dashboard

        services.extend(worker_dashboard(rt, calls, transcription_off))
        services.append(_report_snapshots(rt))
    if settings.crm.kind.strip().lower() not in ("", "none", "off"):
        services.append(_crm_sync(stack, rt))
    return channels, services


def _report_snapshots(rt: Runtime) -> Service:
    """The repeat-sales report of each period the dashboard offers, stored in the background
    (the page reads it instead of computing it): after every planning pass, and at start when
    missing, stale or of another day, then every ``POVTOR_DASHBOARD_REPORT_REFRESH_S``."""
    from crm_sync.metrics.snapshots import ReportRefresher, ReportSnapshots

    snapshots = ReportSnapshots(rt.engine, rt.settings.default_timezone)
    refresher = ReportRefresher(snapshots, rt.settings.dashboard.report_refresh_s)
    rt.after_planning.append(refresher.planned)
    return refresher


def _crm_sync(stack: AsyncExitStack, rt: Runtime) -> Service:
    """Outcome sync to the configured CRM (Bitrix24 or amoCRM), metrics on ``/metrics``."""
    from crm_sync.history.timeline_feed import SqlTimelineFeed
    from crm_sync.outbound.build import build_sync
    from crm_sync.outbound.metrics import CrmMetrics

    sync = build_sync(
        rt.settings,
        rt.sessions,
        rt.store,
        feed=SqlTimelineFeed(rt.sessions),
        owner=rt.worker_id,
        metrics=CrmMetrics(rt.registry),
    )
    stack.push_async_callback(sync.connector.aclose)
    return sync


async def _voice(stack: AsyncExitStack, rt: Runtime) -> tuple[Channel, list[Service], Any]:
    from povtor.private import make_private_dir
    from voice.call_channel import build_call_channel
    from voice.call_store import CallStore
    from voice.engine import CallEngine
    from voice.recording import CallRecorder, RecordingWriter
    from voice.recording_archive import incoming_folder, recover_after_restart
    from voice.retention import RetentionSweeper
    from voice.sip.trunks import load_trunks
    from voice.storage import storage_from_settings, storages_from_settings

    settings = rt.settings
    call_store = CallStore(rt.sessions, history=rt.store)
    storage = storage_from_settings(settings)
    incoming = incoming_folder(settings)
    make_private_dir(incoming)
    writer = stack.enter_context(RecordingWriter(threads=settings.recordings.writer_threads))

    def recorder(call_uuid: str) -> CallRecorder:
        return CallRecorder.open(
            incoming,
            call_uuid,
            writer=writer,
            flush_interval_s=settings.recordings.flush_interval_s,
        )

    engine = await stack.enter_async_context(
        CallEngine(load_trunks(settings.sip), recorder_factory=recorder, health=rt.board)
    )
    channel = build_call_channel(
        settings, engine, call_store, worker_id=rt.worker_id, history=rt.store, storage=storage
    )
    stack.callback(channel.close)

    async def release_own_calls() -> None:
        # Unwound after every service has ended (the dispatcher drained or cut its calls
        # short): a call of this worker whose end was not stored in time ends interrupted
        # now, its recording archived, instead of staying active until the next start.
        try:
            report = await recover_after_restart(
                call_store, storage, incoming, worker_id=rt.worker_id
            )
        except Exception as err:  # the database is away: the next start's recovery does it
            log.warning("calls of this worker not closed at stop: %s", err)
            return
        if report.interrupted:
            log.warning("at stop, %s", _recovered(report))

    stack.push_async_callback(release_own_calls)
    await channel.warm()

    services: list[Service] = [
        *await _call_recovery(rt, call_store),
        RetentionSweeper(
            call_store,
            storages_from_settings(settings),
            settings.recordings.retention_days,
            interval_s=settings.recordings.sweep_interval_s,
        ),
    ]
    from app.dashboard_processes import call_history

    return channel, services, call_history(settings, rt.sessions)


async def _call_recovery(
    rt: Runtime, call_store: Any = None, *, at_start: bool = True
) -> list[Service]:
    """Calls left ``active`` by a worker that died are marked interrupted and what they
    recorded is archived: at start (SQLite: every active call, this worker is the only one)
    and then periodically (dead workers, and calls older than the longest possible call).
    Runs whether or not SIP is configured now; without SIP (``at_start`` False) the start's
    recovery is the periodic service's first round, so a failure there is logged, not fatal."""
    from voice.call_store import CallStore
    from voice.recording_archive import incoming_folder, recover_after_restart
    from voice.storage import storage_from_settings

    settings = rt.settings
    call_store = call_store or CallStore(rt.sessions, history=rt.store)
    storage = storage_from_settings(settings)
    incoming = incoming_folder(settings)
    # A call cannot outlive max_call_s plus ringing: anything older still "active" belonged to a
    # worker that died. Its calls become interrupted and what it recorded is archived. On
    # SQLite this worker is the only one, so before it dials anything every active call is a
    # dead worker's.
    longest = timedelta(seconds=settings.call.max_call_s + settings.sip.ring_timeout_s + 60)
    everything_active = is_sqlite(settings.db_url)

    async def recover_all() -> None:
        nonlocal everything_active
        report = await recover_after_restart(
            call_store, storage, incoming, started_before=utcnow()
        )
        everything_active = False
        log.info("call recovery at start: %s", _recovered(report))

    if everything_active and at_start:
        await recover_all()

    stale_after = timedelta(seconds=3 * settings.outreach.heartbeat_s)

    async def recover() -> None:
        if everything_active:  # no SIP here: this worker places no calls
            await recover_all()
        # workers whose heartbeat stopped (several workers on PostgreSQL), then any call older
        # than the longest possible call, whoever placed it
        for worker_id in await rt.workers.dead_workers(stale_after):
            report = await recover_after_restart(
                call_store, storage, incoming, worker_id=worker_id
            )
            if report.interrupted:
                log.info("dead worker %s: %s", worker_id, _recovered(report))
        report = await recover_after_restart(
            call_store, storage, incoming, started_before=utcnow() - longest
        )
        if report.interrupted or report.archived:
            log.info("call recovery: %s", _recovered(report))

    return [Periodic("call-recovery", recover, CALL_RECOVERY_INTERVAL_S)]


def _recovered(report: Any) -> str:
    return (
        f"{len(report.interrupted)} calls interrupted, {len(report.archived)} recordings "
        f"archived, {len(report.left)} left for later"
    )


def _background_transcription(rt: Runtime) -> tuple[list[Service], str | None]:
    """The transcription service, or none and why (for the dashboard, in Russian)."""
    from voice.asr_worker import recording_transcriber

    try:
        transcriber = recording_transcriber(rt.settings, rt.engine)
        return [FnService("transcription", transcriber.run)], None
    except ModelError as err:
        log.warning("background transcription is off: %s", err)
        model = rt.settings.asr.model
        why = f"нет модели распознавания речи «{model}» (установите: povtor model fetch {model})"
        return [], why


def _voice_message_transcriber(stack: AsyncExitStack, rt: Runtime) -> Transcriber | None:
    """One process, started on the first voice message, for the bot's voice answers."""
    from voice.models import resolve_model
    from voice.transcribe import TranscriberPool

    try:
        model = resolve_model(rt.settings.asr.model, rt.settings.models_dir)
    except ModelError as err:
        log.info("voice messages will not be transcribed: %s", err)
        return None
    pool = TranscriberPool(model, workers=1, allocator=rt.settings.asr.allocator)
    stack.push_async_callback(pool.aclose, cancel=True)
    return pool
