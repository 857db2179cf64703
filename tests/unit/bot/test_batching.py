"""The page batches: the calls of one polled page's updates run as one set per batch."""

from __future__ import annotations

import asyncio

import pytest

from bot.batching import Batch, Page


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.runs: list[list[int]] = []
        self.fail = fail

    async def __call__(self, items: list[int]) -> list[int]:
        self.runs.append(list(items))
        if self.fail:
            raise RuntimeError("database said no")
        return [item * 10 for item in items]


async def _turns(count: int) -> None:
    """``count`` turns of the event loop: the middlewares and filters before a call."""
    for _ in range(count):
        await asyncio.sleep(0)


async def _page(members: list[object]) -> list[object]:
    """Start each coroutine function as an update of one page, as the poller does."""
    page = Page()

    async def member(work: object) -> object:
        async with page.member():
            return await work()  # type: ignore[operator]

    tasks = []
    for work in members:
        page.add()
        tasks.append(asyncio.create_task(member(work)))
    await page.pause()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_calls_reaching_a_batch_in_different_turns_run_as_one_set() -> None:
    run = Recorder()
    batch: Batch[int, int] = Batch("numbers", run)

    def update(n: int) -> object:
        async def work() -> int:
            await _turns(n)  # each update reaches the batch in a turn of its own
            return await batch.submit(n)

        return work

    assert await _page([update(n) for n in range(5)]) == [0, 10, 20, 30, 40]
    assert run.runs == [[0, 1, 2, 3, 4]]


async def test_an_update_that_makes_no_call_does_not_hold_the_set() -> None:
    run = Recorder()
    batch: Batch[int, int] = Batch("numbers", run)

    async def press() -> int:
        return await batch.submit(7)

    async def text() -> str:
        await _turns(3)
        return "replied"

    assert await _page([press, text, press]) == [70, "replied", 70]
    assert run.runs == [[7, 7]]


async def test_each_stage_of_a_page_is_one_set_and_a_failed_set_fails_its_callers() -> None:
    claims, presses = Recorder(), Recorder(fail=True)
    first: Batch[int, int] = Batch("claims", claims)
    second: Batch[int, int] = Batch("presses", presses)

    def update(n: int) -> object:
        async def work() -> int:
            await first.submit(n)
            await _turns(n)
            return await second.submit(n)

        return work

    results = await _page([update(n) for n in range(3)])
    assert claims.runs == [[0, 1, 2]]
    assert presses.runs == [[0, 1, 2]]
    assert all(isinstance(r, RuntimeError) for r in results)


@pytest.mark.parametrize("turns", [0, 2])
async def test_outside_a_page_the_calls_of_one_turn_are_gathered(turns: int) -> None:
    run = Recorder()
    batch: Batch[int, int] = Batch("numbers", run)

    async def call(n: int) -> int:
        await _turns(turns)
        return await batch.submit(n)

    assert await asyncio.gather(*(call(n) for n in range(3))) == [0, 10, 20]
    assert run.runs == [[0, 1, 2]]
