"""The adapters' half of the composition root: builds the bot, the call engine and its channel,
background transcription, recording retention, the dashboard and the CRM sync from settings, for
:func:`app.runtime.run`. Each part is built only when configured, and everything it opens is
closed through the runtime's exit stack.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from povtor.db import is_sqlite, utcnow
from povtor.domain import ChannelKind
from povtor.errors import ModelError
from povtor.lifecycle import Periodic
from povtor.ports import Channel, Transcriber

if TYPE_CHECKING:
    from app.runtime import Runtime, Service

log = logging.getLogger(__name__)

CALL_RECOVERY_INTERVAL_S = 60.0


async def build_adapters(
    stack: AsyncExitStack, rt: Runtime
) -> tuple[dict[ChannelKind, Channel], list[Service]]:
    from app.runtime import FnService
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
        from crm_sync.outbound.build import crm_kind
        from crm_sync.outbound.view import SqlCrmSyncView
        from crm_sync.retention_view import SqlRetentionView
        from dashboard.service import DashboardService

        crm = SqlCrmSyncView(rt.sessions, crm_kind(settings.crm))
        retention = SqlRetentionView(rt.engine, rt.store, settings.default_timezone)
        dashboard = DashboardService(
            settings,
            rt.store,
            reports,
            calls,
            crm=crm,
            retention=retention,
            transcription_off=transcription_off,
            health=rt.board,
        )
        services.append(dashboard)
    if settings.crm.kind.strip().lower() not in ("", "none", "off"):
        services.append(_crm_sync(stack, rt))
    return channels, services


def _crm_sync(stack: AsyncExitStack, rt: Runtime) -> Service:
    """Outcome sync to the configured CRM (Bitrix24 or amoCRM), metrics on ``/metrics``."""
    from crm_sync.outbound.build import build_sync
    from crm_sync.outbound.metrics import CrmMetrics
    from crm_sync.timeline_feed import SqlTimelineFeed

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
    from voice.call_history import SqlCallHistory
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
    await channel.warm()

    # A call cannot outlive max_call_s plus ringing: anything older still "active" belonged to a
    # worker that died. Its calls become interrupted and what it recorded is archived. On
    # SQLite this worker is the only one, so before it dials anything every active call is a
    # dead worker's.
    longest = timedelta(seconds=settings.call.max_call_s + settings.sip.ring_timeout_s + 60)
    if is_sqlite(settings.db_url):
        report = await recover_after_restart(
            call_store, storage, incoming, started_before=utcnow()
        )
        log.info("call recovery at start: %s", _recovered(report))

    stale_after = timedelta(seconds=3 * settings.outreach.heartbeat_s)

    async def recover() -> None:
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

    services: list[Service] = [
        Periodic("call-recovery", recover, CALL_RECOVERY_INTERVAL_S),
        RetentionSweeper(
            call_store,
            storages_from_settings(settings),
            settings.recordings.retention_days,
            interval_s=settings.recordings.sweep_interval_s,
        ),
    ]
    history = SqlCallHistory(
        rt.sessions, storages_from_settings(settings), settings.data_dir / "cache" / "recordings"
    )
    return channel, services, history


def _recovered(report: Any) -> str:
    return (
        f"{len(report.interrupted)} calls interrupted, {len(report.archived)} recordings "
        f"archived, {len(report.left)} left for later"
    )


def _background_transcription(rt: Runtime) -> tuple[list[Service], str | None]:
    """The transcription service, or none and why (for the dashboard, in Russian)."""
    from app.runtime import FnService
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
    pool = TranscriberPool(model, workers=1)
    stack.push_async_callback(pool.aclose, cancel=True)
    return pool
