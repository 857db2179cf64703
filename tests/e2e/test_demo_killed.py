"""A demo killed outright (SIGKILL: no chance to stop anything itself) takes its children
with it: the worker, and the SIPp phones. Without it they ran on, holding their ports."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.test_demo import _free_port, _listening
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
async def test_a_sigkilled_demo_leaves_no_child_running(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
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
        # the worker serves its dashboard: every child the demo starts is up by then
        await wait_until(lambda: _listening(ports[0]), 120, "worker up", every_s=0.5)
        children = _children(demo.pid)
        commands = {pid: _command(pid) for pid in children}
        assert any("sipp" in c for c in commands.values()), commands
        assert any("worker_start" in c for c in commands.values()), commands
        os.kill(demo.pid, signal.SIGKILL)
        await demo.wait()
        # the worker drains on SIGTERM (up to its drain timeout), SIPp goes at once
        await wait_until(
            lambda: not any(_alive(pid) for pid in children), 60, "children gone", every_s=0.2
        )
        assert not _listening(ports[0])
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
        for pid in filter(_alive, children):  # the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)
