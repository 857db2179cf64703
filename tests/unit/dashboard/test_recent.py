"""Slow figures reused for a short while: one read for concurrent requests, fresh after the TTL,
failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_requests_share_one_read_until_the_ttl_passes() -> None:
    clock = Clock()
    recent = Recent(60, clock=clock)
    reads = 0
    gate, started = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        started.set()
        await gate.wait()
        return reads

    waiting = [asyncio.create_task(recent.get("k", read)) for _ in range(5)]
    await started.wait()  # the first read is under way: the others find it pending
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    clock.now = 59
    assert await recent.get("k", read) == 1
    clock.now = 61
    assert await recent.get("k", read) == 2
    assert await recent.get("other", read) == 3


async def test_a_failed_read_is_not_kept() -> None:
    recent = Recent(60, clock=Clock())
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database restarting")
        return "ok"

    with pytest.raises(RuntimeError):
        await recent.get("k", flaky)
    assert await recent.get("k", flaky) == "ok"


async def test_zero_ttl_reads_every_time_and_size_is_bounded() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        return calls

    off = Recent(0)
    assert [await off.get("k", read) for _ in range(3)] == [1, 2, 3]
    small = Recent(60, size=2, clock=Clock())
    for key in ("a", "b", "c"):
        await small.get(key, read)
    assert await small.get("a", read) == 7  # dropped as the oldest: read again
    assert await small.get("c", read) == 6
