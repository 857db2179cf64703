"""The worker's start as a user configures it: every setting that cannot work is refused in one
line before anything starts; what only hurts one part (a taken dashboard port) leaves the rest
running with the reason on /healthz."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from tests.integration.deploy.worker import (
    base_settings,
    free_tcp_port,
    povtor,
    running_worker,
    write_env,
)
from tests.integration.sip.peers import free_port


def _sqlite(tmp_path: Path, db_url: str) -> dict[str, str]:
    return base_settings(tmp_path, db_url)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_taken_dashboard_port_leaves_the_worker_running_and_says_which_setting(
    db_url: str, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = {
            **base_settings(tmp_path, db_url),
            "POVTOR_DASHBOARD_ENABLED": "true",
            "POVTOR_DASHBOARD_PORT": str(port),
        }
        async with running_worker(tmp_path / "w", settings) as worker:
            health = await worker.wait_health(lambda h: "dashboard" in h.get("components", {}))
            line = await worker.wait_log("dashboard down")
    assert health["status"] == "degraded"
    reason = health["components"]["dashboard"]["reason"]
    assert reason.startswith(f"cannot listen on 127.0.0.1:{port} (Address already in use)")
    assert "POVTOR_DASHBOARD_PORT" in reason
    assert "WARNING" in line
    assert "planner" in worker.log  # the rest of the worker started


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_postgresql_url_as_hosting_panels_write_it_runs_on_asyncpg(
    db_url: str, tmp_path: Path
) -> None:
    plain = db_url.replace("postgresql+asyncpg://", "postgresql://")
    async with running_worker(tmp_path / "w", base_settings(tmp_path, plain)) as worker:
        status, health = await worker.healthz()
    # 503 would mean the database does not answer; with no channel configured the worker is
    # "degraded" for that reason alone, never for its database
    assert status == 200
    assert health["status"] in ("ok", "degraded")
    assert not [name for name in health.get("components", {}) if "database" in name]


async def _refusal(tmp_path: Path, settings: dict[str, str]) -> tuple[int, list[str]]:
    write_env(tmp_path, settings)
    rc, _out, err = await povtor(tmp_path, "run")
    return rc, err.strip().splitlines()


@pytest.mark.postgres
async def test_a_missing_database_is_one_line(tmp_path: Path) -> None:
    name = f"povtor_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    rc, lines = await _refusal(tmp_path, base_settings(tmp_path, url))
    assert rc == 2
    assert lines == [
        f"povtor run: cannot use the database '{name}' on 127.0.0.1:5432: "
        f'database "{name}" does not exist'
    ]


async def test_a_database_without_schema_says_to_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    rc, lines = await _refusal(tmp_path, base_settings(tmp_path, url))
    assert rc == 2
    assert lines == [
        f"povtor run: the database {tmp_path / 'empty.db'} has no Povtor schema: "
        "run `povtor db upgrade`"
    ]


async def test_a_sync_driver_url_is_refused_naming_the_right_form(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/povtor"
    rc, lines = await _refusal(tmp_path, base_settings(tmp_path, url))
    assert rc == 2
    assert len(lines) == 1
    assert lines[0].startswith("povtor run: POVTOR_DATABASE_URL uses postgresql+psycopg2")
    assert "postgresql://user:password@host:5432/name" in lines[0]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_webhook_without_its_secret_is_refused_before_anything_starts(
    db_url: str, tmp_path: Path
) -> None:
    sip_port = free_port()
    rc, lines = await _refusal(
        tmp_path,
        {
            **base_settings(tmp_path, db_url),
            "POVTOR_SIP_ENABLED": "true",
            "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
            "POVTOR_SIP_LOCAL_PORT": str(sip_port),
            "POVTOR_TELEGRAM_BOT_TOKEN": "123456:TEST",
            "POVTOR_TELEGRAM_MODE": "webhook",
            "POVTOR_TELEGRAM_WEBHOOK_URL": "https://bot.example.ru/telegram/webhook",
        },
    )
    assert rc == 2
    assert lines == [  # no service logged a start: the refusal came first
        "povtor run: webhook mode needs POVTOR_TELEGRAM_WEBHOOK_URL and "
        "POVTOR_TELEGRAM_WEBHOOK_SECRET"
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_taken_health_port_is_refused_naming_the_setting(
    db_url: str, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, lines = await _refusal(
            tmp_path, {**base_settings(tmp_path, db_url), "POVTOR_METRICS_PORT": str(port)}
        )
    assert rc == 2
    assert lines == [
        f"povtor run: cannot listen on 127.0.0.1:{port} for /healthz and /metrics "
        "(Address already in use): set POVTOR_METRICS_PORT (and POVTOR_METRICS_HOST)"
    ]
    assert free_tcp_port()  # nothing else left behind
