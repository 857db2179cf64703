"""`povtor demo` run once, unattended, as a newcomer would, with a real-looking trunk and bot
token in .env and in the environment, and its worker SIGKILLed in the middle. The tests read
only what the run left: the store, dashboard pages over HTTP (fetched while it ran),
recordings on disk, the emulator's record of what the bot sent, and two catchers standing in
for the "real" Telegram and trunk, which must hear nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.demo.world import CAST, MANAGER_CHAT, PERSONA_CHAT_BASE
from tests.integration.sip.peers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sip, pytest.mark.telegram, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
SECONDS = 140
REAL_TOKEN = "5012345678:AAF0realLookingTokenFromBotFather0000"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class DemoRun:
    folder: Path
    returncode: int | None = None
    output: str = ""
    killed_pid: int | None = None
    final_pid: int | None = None
    nps_page: str = ""
    tasks_page: str = ""
    telegram_catcher: list[str] = field(default_factory=list)
    trunk_catcher: list[bytes] = field(default_factory=list)
    ports: tuple[int, ...] = ()

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.folder / "povtor.db")

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.db() as conn:
            return list(conn.execute(sql, args))

    def sandbox(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "sandbox-telegram.json").read_text()))


class _TrunkCatcher(asyncio.DatagramProtocol):
    def __init__(self, got: list[bytes]) -> None:
        self.got = got

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.got.append(data)


def _count(folder: Path, sql: str) -> int:
    path = folder / "povtor.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet, or locked for a moment
        return 0


def _pid(folder: Path) -> int | None:
    path = folder / "worker.pid"
    return int(path.read_text()) if path.exists() else None


async def _dashboard_pages(port: int, *paths: str) -> list[str]:
    """Pages as the demo's admin sees them (logged in through the form)."""
    jar = aiohttp.CookieJar(unsafe=True)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{base}/login") as resp:
            token = CSRF_RE.search(await resp.text())
        assert token is not None
        form = {"_csrf": token.group(1), "login": "demo", "password": "water-sandbox-tuesday"}
        async with http.post(f"{base}/login", data=form) as resp:
            assert resp.status == 200, await resp.text()
        pages = []
        for path in paths:
            async with http.get(f"{base}{path}") as resp:
                assert resp.status == 200, path
                pages.append(await resp.text())
    return pages


async def _run_demo(tmp: Path) -> DemoRun:
    run = DemoRun(tmp / "demo")
    catcher = web.Application()

    async def catch(request: web.Request) -> web.Response:
        run.telegram_catcher.append(request.path)
        return web.json_response({"ok": True, "result": []})

    catcher.router.add_route("*", "/{tail:.*}", catch)
    runner = web.AppRunner(catcher)
    await runner.setup()
    tg_port, sip_port = _free_port(), _free_port(socket.SOCK_DGRAM)
    await web.TCPSite(runner, "127.0.0.1", tg_port).start()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _TrunkCatcher(run.trunk_catcher), local_addr=("127.0.0.1", sip_port)
    )
    real = {  # what a business that connected a real bot and trunk has configured
        "POVTOR_TELEGRAM_BOT_TOKEN": REAL_TOKEN,
        "POVTOR_TELEGRAM_API_BASE": f"http://127.0.0.1:{tg_port}",
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{sip_port}",
        "POVTOR_SIP_REGISTRAR": f"127.0.0.1:{sip_port}",
        "POVTOR_SIP_REGISTER_ENABLED": "true",
        "POVTOR_SIP_USER": "74951234567",
        "POVTOR_SIP_PASSWORD": "trunk-password",
    }
    (tmp / ".env").write_text("".join(f"{k}={v}\n" for k, v in real.items()))
    ports = (_free_port(), _free_port(), _free_port())
    run.ports = ports
    env = {**os.environ, **real}
    args = ["--seconds", str(SECONDS), "--dir", str(run.folder), "--clients", "8"]
    args += ["--dashboard-port", str(ports[0]), "--sandbox-port", str(ports[1])]
    args += ["--metrics-port", str(ports[2])]
    out = tmp / "demo-output.txt"
    with out.open("wb") as sink:
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "demo", *args, cwd=tmp, env=env,
            stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        # the detractor's answer with its reason, and the task the manager took from the alert
        detractor = (
            "SELECT count(*) FROM nps_responses r JOIN tasks t ON t.client_id = r.client_id "
            "JOIN clients c ON c.id = r.client_id WHERE c.external_id = 'DEMO-IGOR' "
            "AND r.reason_text IS NOT NULL AND t.status = 'in_progress'"
        )
        await wait_until(
            lambda: _count(run.folder, detractor) > 0, 100, "detractor taken", every_s=0.5
        )
        # mid-run, with calls on the line: the worker is killed outright, the demo restarts it
        active = "SELECT count(*) FROM calls WHERE state = 'active'"
        await wait_until(
            lambda: _count(run.folder, active) > 0, 60, "calls under way", every_s=0.5
        )
        run.killed_pid = _pid(run.folder)
        assert run.killed_pid is not None
        os.kill(run.killed_pid, signal.SIGKILL)
        await wait_until(
            lambda: _pid(run.folder) not in (None, run.killed_pid),
            30,
            "worker restarted",
            every_s=0.5,
        )
        await wait_until(lambda: _listening(ports[0]), 90, "dashboard back", every_s=0.5)
        run.nps_page, run.tasks_page = await _dashboard_pages(
            ports[0],
            "/nps",
            "/tasks?view=in_progress",  # the manager took the task
        )
        async with asyncio.timeout(SECONDS + 90):
            await demo.wait()
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
            await demo.wait()
        transport.close()
        await runner.cleanup()
    run.returncode = demo.returncode
    run.output = out.read_text(errors="replace")
    run.final_pid = _pid(run.folder)
    return run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    return asyncio.run(_run_demo(tmp_path_factory.mktemp("demo")))


def _moment(value: str | None) -> datetime | None:
    """A time stamp as SQLite keeps it (UTC, no zone)."""
    return None if value is None else datetime.fromisoformat(value)


def _log(run: DemoRun) -> str:
    return run.output[-2000:] + (run.folder / "worker.log").read_text(errors="replace")[-3000:]


def test_demo_ends_by_itself_and_leaves_nothing_running(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, _log(demo_run)
    assert "http://127.0.0.1:" in demo_run.output
    assert "water-sandbox-tuesday" in demo_run.output
    for port in demo_run.ports:
        assert not _bound(port), f"port {port} still bound"
    for pid in (demo_run.killed_pid, demo_run.final_pid):
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_demo_reminders_are_delivered_and_pressed(demo_run: DemoRun) -> None:
    sent = demo_run.sandbox()["sent"]
    maria = PERSONA_CHAT_BASE + 2
    reminders = [m for m in sent if m["chat_id"] == maria and "Повторить заказ" in m["buttons"]]
    assert len(reminders) == 1, sent
    (outcome,) = demo_run.rows(
        "SELECT o.kind FROM outreach_outcomes o JOIN outreach_attempts a ON a.id = o.attempt_id "
        "JOIN clients c ON c.id = a.client_id WHERE c.external_id = 'DEMO-MARIA' "
        "AND a.purpose = 'reorder' AND a.channel = 'telegram' AND o.kind = 'answered'"
    )
    assert outcome == ("answered",)
    assert demo_run.rows("SELECT count(*) FROM bot_presses")[0][0] > 0


def test_demo_calls_are_answered_busy_unanswered_and_recorded(demo_run: DemoRun) -> None:
    outcomes = dict(demo_run.rows("SELECT outcome, count(*) FROM calls GROUP BY outcome"))
    assert outcomes.get("answered", 0) >= 3, outcomes
    assert outcomes.get("busy", 0) >= 1, outcomes
    assert outcomes.get("no_answer", 0) >= 1, outcomes
    stored = demo_run.rows("SELECT uri, size_bytes FROM recordings WHERE storage = 'local'")
    on_disk = [
        (Path(uri.removeprefix("file://")), size)
        for uri, size in stored
        if uri.startswith(f"file://{demo_run.folder}")
    ]
    assert len(on_disk) >= 3, stored[:5]
    assert all(path.stat().st_size == size > 44 for path, size in on_disk)
    keys = dict(demo_run.rows("SELECT target, dtmf FROM calls WHERE outcome = 'answered'"))
    assert keys.get("+79790990910") == "9" or keys.get("+79790990108") == "8", keys


def test_demo_detractor_reason_and_task_show_on_the_dashboard(demo_run: DemoRun) -> None:
    assert "Курьер опоздал на три часа" in demo_run.nps_page
    assert "Игорь Петров" in demo_run.tasks_page
    assert "Низкая оценка NPS (3)" in demo_run.tasks_page


def test_demo_manager_is_alerted_and_takes_the_task(demo_run: DemoRun) -> None:
    sent = demo_run.sandbox()["sent"]
    alerts = [m for m in sent if m["chat_id"] == MANAGER_CHAT and "Игорь Петров" in m["text"]]
    assert alerts, [m["text"][:60] for m in sent if m["chat_id"] == MANAGER_CHAT]
    (status,) = demo_run.rows(
        "SELECT t.status FROM tasks t JOIN clients c ON c.id = t.client_id "
        "WHERE c.external_id = 'DEMO-IGOR' AND t.title LIKE '%(3)%'"
    )
    assert status == ("in_progress",)


def test_demo_contacts_nobody_twice_across_a_killed_worker(demo_run: DemoRun) -> None:
    assert demo_run.killed_pid != demo_run.final_pid
    sent = demo_run.sandbox()["sent"]
    asked = [(m["chat_id"], m["text"]) for m in sent if m["buttons"]]
    assert len(asked) == len(set(asked)), "a survey or reminder went out twice"
    over = demo_run.rows(
        "SELECT a.id, a.attempt_no, count(c.id) FROM outreach_attempts a "
        "JOIN calls c ON c.attempt_id = a.id GROUP BY a.id HAVING count(c.id) > a.attempt_no"
    )
    assert over == [], "an attempt's try was dialled twice"
    called_after_answer = demo_run.rows(
        "SELECT f.id FROM outreach_attempts f "
        "JOIN outreach_outcomes o ON o.attempt_id = f.fallback_of AND o.kind = 'answered' "
        "JOIN calls c ON c.attempt_id = f.id WHERE o.recorded_at < c.started_at"
    )
    assert called_after_answer == [], "called a client who had answered in Telegram"


def test_demo_ignores_the_trunk_and_token_of_env_and_environment(demo_run: DemoRun) -> None:
    assert demo_run.telegram_catcher == []
    assert demo_run.trunk_catcher == []
    sandbox = demo_run.sandbox()
    assert sandbox["base_url"].startswith("http://127.0.0.1:")
    assert "sendMessage" in sandbox["methods"]
    targets = [t for (t,) in demo_run.rows("SELECT DISTINCT target FROM calls")]
    assert targets
    assert all(t.startswith("+79790") for t in targets)
    assert REAL_TOKEN not in (demo_run.folder / "worker.log").read_text()


def test_demo_holds_a_client_until_the_morning_of_its_clock(demo_run: DemoRun) -> None:
    """Polina lives where the demo's clock shows 6-7 am: her survey waits for 9:00 on that
    clock (about a minute of real time at its speed), then goes out."""
    rows = demo_run.rows(
        "SELECT a.created_at, a.not_before, min(o.recorded_at) FROM outreach_attempts a "
        "JOIN clients c ON c.id = a.client_id LEFT JOIN outreach_outcomes o "
        "ON o.attempt_id = a.id WHERE c.external_id = 'DEMO-POLINA' AND a.purpose = 'nps' "
        "AND a.fallback_of IS NULL GROUP BY a.id"
    )
    assert len(rows) == 1, rows
    created, not_before, first_outcome = (_moment(value) for value in rows[0])
    assert created is not None
    assert not_before is not None
    assert not_before - created >= timedelta(seconds=20), rows  # held for her morning
    assert first_outcome is not None, rows
    assert first_outcome >= not_before, rows
    polina = PERSONA_CHAT_BASE + [p.key for p in CAST].index("polina")
    surveys = [m for m in demo_run.sandbox()["sent"] if m["chat_id"] == polina]
    assert any("Насколько вероятно" in m["text"] for m in surveys), surveys
