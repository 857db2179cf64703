"""`povtor crm ...` and `povtor run` as real processes against the fake Bitrix24 over HTTP:
the --json contracts, a sync killed mid-request and run again, the worker's sync and metrics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.fakes.bitrix24_api import FakeBitrix24
from tests.integration.crm.conftest import Timeline, push_rows

pytestmark = pytest.mark.crm

POVTOR = Path(sys.executable).with_name("povtor")
ROOT = Path(__file__).parents[3]
KEY = re.compile(r"\[povtor:(\d+)\]")


def keys(fake: FakeBitrix24) -> Counter[str]:
    texts = [c["COMMENT"] for c in fake.portal.comments.values()]
    texts += [a["DESCRIPTION"] for a in fake.portal.activities.values()]
    return Counter(k for t in texts for k in KEY.findall(t))


def crm_env(db_url: str, fake: FakeBitrix24, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_LOG_LEVEL": "WARNING",
        "POVTOR_CRM_KIND": "bitrix24",
        "POVTOR_CRM_BITRIX24_WEBHOOK_URL": fake.webhook_url,
        "POVTOR_CRM_BACKFILL": "true",
        "POVTOR_CRM_RATE_PER_S": "500",
        "POVTOR_CRM_BURST": "50",
        **extra,
    }


async def povtor(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The real console script; the fake CRM keeps serving on this loop meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        str(POVTOR),
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def test_sync_status_and_retry_json_contracts(
    db_url: str, bitrix: FakeBitrix24, timeline: Timeline, tmp_path: Path
) -> None:
    bitrix.refuse(
        "crm.timeline.comment.add",
        lambda p: "перезвоните" in str(p.get("fields", {}).get("COMMENT")),
        "ERROR_CORE",
        "Номер +79161234567 в стоп-листе портала",
    )
    ivan = await timeline.client("Иван", "+79161234567")
    anna = await timeline.client("Анна", "+79035550011")
    await timeline.nps(ivan, 4, "Дорого")
    await timeline.complaint(ivan, "перезвоните мне")
    await timeline.outcome(anna, attempt_id=1)
    await timeline.task(anna, "Перезвонить")
    await timeline.not_pushed(anna, 1)
    env = crm_env(db_url, bitrix, tmp_path)

    code, out, err = await povtor(env, "crm", "sync", "--once", "--json")
    assert code == 1, err  # one event failed
    assert last_json(out) == {
        "connector": "bitrix24",
        "held": True,
        "scanned": last_json(out)["scanned"],
        "queued": 4,
        "pushed": 3,
        "retried": 0,
        "failed": 1,
        "pending": 0,
    }

    code, out, err = await povtor(env, "crm", "status", "--json")
    assert code == 0, err
    status = last_json(out)
    assert status["counts"] == {"pending": 0, "sending": 0, "done": 3, "failed": 1}
    assert status["cursor"] == status["head"]
    assert (status["backlog"], status["worker"], status["lease_until"]) == (0, None, None)
    [error] = status["last_errors"]
    assert (error["kind"], error["state"], error["attempts"]) == ("complaint", "failed", 1)
    assert "ERROR_CORE" in error["error"]
    assert "в стоп-листе портала" in error["error"]
    assert "+79161234567" not in out  # masked in what is stored and shown
    assert set(error) == {"event_id", "client_id", "kind", "state", "attempts", "error", "at"}

    bitrix.refusals.clear()
    code, out, err = await povtor(env, "crm", "retry", "--json")
    assert (code, last_json(out)) == (0, {"retried": 1}), err
    code, out, err = await povtor(env, "crm", "sync", "--once", "--json")
    assert (code, last_json(out)["pushed"], last_json(out)["pending"]) == (0, 1, 0), err
    assert set(keys(bitrix).values()) == {1}
    assert len(keys(bitrix)) == 4

    code, out, err = await povtor(env, "crm", "status")
    assert code == 0, err
    assert "bitrix24: pending 0, sending 0, done 4, failed 0" in out


async def test_a_sync_killed_mid_request_is_finished_by_the_next_run_once_each(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
    tmp_path: Path,
) -> None:
    for n in range(3):
        client = await timeline.client(f"Клиент {n}", f"+7916000{n:04d}")
        await timeline.nps(client, 8)
        await timeline.complaint(client, f"Жалоба {n}")
    arrived = bitrix.hold({"crm.timeline.comment.add"})
    env = crm_env(db_url, bitrix, tmp_path, POVTOR_CRM_LEASE_S="1")
    proc = await asyncio.create_subprocess_exec(
        str(POVTOR), "crm", "sync", "--once", env=env, cwd=ROOT
    )
    await asyncio.wait_for(arrived.wait(), 60)  # the portal has the comment, no answer yet
    proc.kill()  # SIGKILL: no cleanup at all
    await proc.wait()
    bitrix.release()
    [left] = [r for r in await push_rows(sessions) if r.state == "sending"]

    code, out, err = await povtor(env, "crm", "sync", "--once", "--wait", "30", "--json")

    assert code == 0, err
    assert last_json(out)["held"] is True
    assert set(keys(bitrix).values()) == {1}
    assert len(keys(bitrix)) == timeline.pushable
    assert str(left.event_id) in keys(bitrix)
    assert bitrix.count("crm.timeline.comment.list") >= 1  # looked up before pushing again
    assert {r.state for r in await push_rows(sessions)} == {"done"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
async def test_the_worker_syncs_the_timeline_and_reports_it_on_metrics(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bitrix: FakeBitrix24,
    timeline: Timeline,
    tmp_path: Path,
) -> None:
    ivan = await timeline.client("Иван", "+79161234567")
    await timeline.nps(ivan, 10)
    await timeline.task(ivan, "Поблагодарить")
    port = _free_port()
    env = crm_env(
        db_url,
        bitrix,
        tmp_path,
        POVTOR_LOG_LEVEL="INFO",
        POVTOR_METRICS_PORT=str(port),
        POVTOR_DASHBOARD_ENABLED="false",
        POVTOR_OUTREACH_ENABLED="false",
        POVTOR_ASR_BACKGROUND="false",
        POVTOR_CRM_POLL_INTERVAL_S="0.2",
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "run", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await bitrix.wait_for(lambda: len(keys(bitrix)) == 2, within=60)
        await timeline.complaint(ivan, "А доставка подвела")  # while the worker runs
        await bitrix.wait_for(lambda: len(keys(bitrix)) == 3, within=60)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            metrics = await resp.text()
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), timeout=60)
    log = stderr.decode()
    assert worker.returncode == 0, log[-3000:]
    assert "crm-sync" in log
    assert 'povtor_crm_pushed_total{connector="bitrix24",kind="nps"} 1.0' in metrics
    assert "povtor_crm_events" in metrics
    assert {r.state for r in await push_rows(sessions)} == {"done"}
    assert "+79161234567" not in log


async def test_the_worker_refuses_to_start_with_an_incomplete_crm_setting(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_METRICS_PORT": "0",
        "POVTOR_DASHBOARD_ENABLED": "false",
        "POVTOR_ASR_BACKGROUND": "false",
        "POVTOR_CRM_KIND": "amocrm",
        "POVTOR_CRM_AMOCRM_SUBDOMAIN": "shop",
        "POVTOR_CRM_AMOCRM_REFRESH_TOKEN": "def502-refresh",
    }
    code, _out, err = await povtor(env, "run", "--duration", "30")
    assert code == 2
    assert "POVTOR_CRM_AMOCRM_CLIENT_ID" in err
    assert "Traceback" not in err
    assert "def502-refresh" not in err
