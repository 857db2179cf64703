"""The worker as a real process: one per SQLite database, the plan CLI contract, health and
metrics over HTTP, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.runtime import Runtime, run
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.db import create_engine, session_factory
from povtor.domain import ChannelKind
from povtor.settings import (
    AsrSettings,
    DashboardSettings,
    Settings,
    SipSettings,
    TelegramSettings,
)
from tests.integration.outreach.conftest import NOON_MSK
from tests.integration.outreach.procs import Worker, run_cli, worker_env
from tests.logged import logged


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "povtor.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{path}"


async def test_second_worker_on_sqlite_refuses_to_start_and_a_killed_one_blocks_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = worker_env(sqlite_url, tmp_path / "journal", tmp_path)
    first = Worker(env, tmp_path / "w1.log")
    await first.started()
    code, _out, err = await run_cli([sys.executable, "-m", "tests.fakes.outreach_worker"], env)
    assert code == 3
    assert "already running on the SQLite database" in err
    assert "PostgreSQL" in err

    first.kill()  # SIGKILL: the kernel drops the lock with the process
    third = Worker(env, tmp_path / "w3.log")
    await third.started()
    assert await third.stop() == 0
    assert "stopped" in third.text()


async def test_plan_dry_run_json_is_one_stable_object_per_line(
    tmp_path: Path, sqlite_url: str
) -> None:
    engine = create_engine(sqlite_url)
    store = SqlHistoryStore(session_factory(engine))
    for ext, chat in (("A-1", 11), ("A-2", None)):
        client = await store.create_client(ClientInput(external_id=ext, name="Клиент"))
        if chat:
            await store.link_telegram(client.id, chat)
        for i, ago in enumerate((88, 58, 28)):
            placed = NOON_MSK - timedelta(days=ago)
            await store.add_order(
                OrderInput(f"{ext}-{i}", ext, placed, Decimal(10), delivered_at=placed)
            )
    await engine.dispose()
    env = worker_env(sqlite_url, tmp_path / "j", tmp_path)
    code, out, err = await run_cli(
        [sys.executable, "-c", "from app.cli import main; main()", "plan", "--dry-run",
         "--json", "--as-of", NOON_MSK.isoformat()],
        env,
    )  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {(x["client"], x["purpose"], x["channel"]) for x in lines} == {
        ("A-1", "reorder", "telegram"),
        ("A-2", "reorder", "call"),
    }
    for line in lines:
        assert list(line) == ["client", "purpose", "channel", "not_before", "reason"]
        assert line["not_before"].endswith("+00:00")
        assert "cycle 30 d" in line["reason"]


@pytest.mark.postgres
async def test_health_and_metrics_answer_while_the_worker_runs(
    pg_database_url: str, tmp_path: Path
) -> None:
    from tests.conftest import truncate_all

    await truncate_all(pg_database_url)
    settings = Settings(
        database_url=pg_database_url, data_dir=tmp_path, metrics_port=0, _env_file=None
    )
    stop = asyncio.Event()
    built: list[Runtime] = []
    ready = asyncio.Event()
    from tests.fakes.outreach_channels import ScriptedChannel

    channels = {k: ScriptedChannel(k) for k in ChannelKind}
    task = asyncio.create_task(
        run(
            settings,
            channels=channels,
            stop=stop,
            handle_signals=False,
            on_ready=lambda rt: (built.append(rt), ready.set()),
        )
    )
    try:
        async with asyncio.timeout(30):
            await ready.wait()
            assert built[0].health is not None
            await built[0].health.ready.wait()
        port = built[0].health.bound_port  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["status"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
        assert "povtor_attempt_claims_total" in body
        assert "povtor_queue_lag_seconds" in body
        assert "povtor_executions_in_progress" in body
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_health_is_degraded_with_the_reason_when_no_channel_can_reach_anyone(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path, metrics_port=0, _env_file=None)
    stop = asyncio.Event()
    built: list[Runtime] = []
    ready = asyncio.Event()
    task = asyncio.create_task(
        run(
            settings,
            stop=stop,
            handle_signals=False,
            on_ready=lambda rt: (built.append(rt), ready.set()),
        )
    )
    try:
        async with asyncio.timeout(30):
            await ready.wait()
            assert built[0].health is not None
            await built[0].health.ready.wait()
        port = built[0].health.bound_port  # type: ignore[union-attr]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as resp,
        ):
            assert resp.status == 200  # degraded: up, but a monitor should look
            body = await resp.json()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert body["status"] == "degraded"
    assert body["channels"] == []
    assert "no channel configured" in body["reason"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_calls_left_active_are_recovered_at_start_even_without_sip(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    from app.wiring import build_adapters
    from voice.call_records import CallState
    from voice.call_store import CallStore

    calls = CallStore(session_factory(engine))
    await calls.create_call(
        "0" * 32, trunk="default", target="+79161234567", worker_id="dead-worker"
    )
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        metrics_port=0,
        sip=SipSettings(enabled=False),
        telegram=TelegramSettings(bot_token=None),
        dashboard=DashboardSettings(enabled=False),
        asr=AsrSettings(background=False),
        _env_file=None,
    )
    stop = asyncio.Event()
    ready = asyncio.Event()
    with logged("app.wiring", "call recovery at start") as recovered:
        task = asyncio.create_task(
            run(
                settings,
                stop=stop,
                handle_signals=False,
                on_ready=lambda _rt: ready.set(),
                adapters=build_adapters,
            )
        )
        try:
            async with asyncio.timeout(30):
                await ready.wait()
                await recovered.wait()  # the worker's own word, from the recovery's first round
            assert (await calls.get_call("0" * 32)).state is CallState.INTERRUPTED
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
