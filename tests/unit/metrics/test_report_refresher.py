"""The worker's report refresher: a planning pass wakes it at once; passes that end while it
refreshes are followed by one more refresh, not lost and not one each."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, cast

from crm_sync.metrics.snapshots import ReportRefresher, ReportSnapshots


class Snapshots:
    """Records the refresher's calls; a refresh waits at ``gate`` until the test opens it."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.checked = asyncio.Event()
        self.refreshing = asyncio.Event()
        self.second = asyncio.Event()

    async def refresh_if_stale(self, max_age: timedelta) -> list[Any]:
        self.calls.append("if stale")
        self.checked.set()
        return []

    async def refresh(self, now: datetime | None = None) -> list[Any]:
        self.calls.append("refresh")
        self.refreshing.set()
        if self.calls.count("refresh") == 2:
            self.second.set()
        await self.gate.wait()
        return []


async def test_passes_during_a_refresh_are_followed_by_one_more() -> None:
    fake = Snapshots()
    refresher = ReportRefresher(cast(ReportSnapshots, fake), every_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(refresher.run(stop))
    async with asyncio.timeout(10):
        await fake.checked.wait()  # at start: only if stale
        assert fake.calls == ["if stale"]
        refresher.planned()
        await fake.refreshing.wait()  # a pass: refreshed at once, not in an hour
        refresher.planned()  # two more passes end during that refresh
        refresher.planned()
        fake.gate.set()
        await fake.second.wait()
        stop.set()
        await task
    assert fake.calls == ["if stale", "refresh", "refresh"]
    assert refresher.refreshes == 3
