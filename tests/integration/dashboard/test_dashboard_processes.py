"""The worker's extra dashboard processes end with the worker."""

from __future__ import annotations

import asyncio
import signal
import sys

from app.dashboard_processes import DashboardProcesses

# a process that runs until it is signalled
WAITS = [sys.executable, "-c", "import signal; signal.pause()"]


async def test_each_extra_process_is_started_and_terminated_at_stop() -> None:
    processes = DashboardProcesses(WAITS, 2)
    stop = asyncio.Event()
    task = asyncio.create_task(processes.run(stop))
    async with asyncio.timeout(30):
        await processes.running.wait()
        assert [p.returncode for p in processes.started] == [None, None]
        stop.set()
        await task
    assert [p.returncode for p in processes.started] == [-signal.SIGTERM, -signal.SIGTERM]
