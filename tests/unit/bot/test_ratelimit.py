from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import RateLimiter


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_global_rate_is_never_exceeded_in_any_one_second_window() -> None:
    limiter = RateLimiter(global_rate=20, per_chat_rate=1000, margin_s=0.0)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def send(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            times.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(send(i) for i in range(45)))
    assert max_in_window(sorted(times)) <= 20
    assert loop.time() - started >= 2.0  # 45 messages at 20/s need more than 2 s


async def test_one_chat_gets_one_message_per_second_while_others_are_not_held_back() -> None:
    limiter = RateLimiter(global_rate=100, per_chat_rate=2, margin_s=0.0)
    loop = asyncio.get_running_loop()
    busy: list[float] = []
    others: list[float] = []

    async def to_busy() -> None:
        async with limiter.slot(1):
            busy.append(loop.time())

    async def to_other(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            others.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(to_busy() for _ in range(3)), *(to_other(i) for i in range(2, 12)))
    gaps = [b - a for a, b in zip(sorted(busy), sorted(busy)[1:], strict=False)]
    assert min(gaps) >= 0.49
    assert max(others) - started < 0.3  # other chats went out at once


async def test_pause_holds_every_sender() -> None:
    limiter = RateLimiter(global_rate=100, per_chat_rate=100)
    loop = asyncio.get_running_loop()
    limiter.pause(0.3)
    started = loop.time()
    async with limiter.slot(5):
        pass
    assert loop.time() - started >= 0.29


async def test_a_slow_answer_keeps_its_place_in_the_window_until_it_comes_back() -> None:
    """Receive times may bunch up when answers are slow: the window runs from each answer."""
    limiter = RateLimiter(global_rate=5, per_chat_rate=1000)
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    sent: list[float] = []

    async def slow(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            sent.append(loop.time())
            await release.wait()

    first = [asyncio.create_task(slow(i)) for i in range(5)]
    waiting = asyncio.create_task(slow(99))
    with pytest.raises(TimeoutError):  # more than a window: blocked while five are in flight
        await asyncio.wait_for(asyncio.shield(waiting), 1.5)
    assert len(sent) == 5
    answered = loop.time()
    release.set()
    await asyncio.gather(*first, waiting)
    assert sent[-1] - answered >= 0.99
