"""The outcome batcher: on hold, another loop takes its items into a transaction of its own and
says whether they were written; off hold, or closed, it writes them itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from outreach.batching import Batcher


async def test_on_hold_items_wait_for_the_taker_who_writes_them_or_gives_them_back() -> None:
    flushed: list[list[str]] = []

    async def flush(items: list[str]) -> None:
        flushed.append(items)

    batcher: Batcher[str] = Batcher(flush)
    batcher.hold(True)
    writer = asyncio.create_task(batcher.run())
    submitters = [asyncio.create_task(batcher.submit(x)) for x in ("a", "b", "c")]
    await asyncio.sleep(0)  # each submitter queues its item and waits
    assert batcher.pending == 3
    assert flushed == []  # held: the batcher writes nothing itself

    taken = batcher.take(2)
    assert [item for item, _ in taken] == ["a", "b"]
    batcher.put_back(taken)  # the taker's transaction failed: first in line again
    assert batcher.pending == 3
    assert not any(s.done() for s in submitters)

    taken = batcher.take(2)
    batcher.written(taken)
    await asyncio.gather(*submitters[:2])  # written elsewhere: their submitters go on
    assert not submitters[2].done()
    assert flushed == []

    batcher.hold(False)  # the taker stopped: the batcher writes what is left
    await submitters[2]
    assert flushed == [["c"]]
    batcher.close()
    await writer


async def test_closing_a_held_batcher_writes_what_is_left() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        flushed.append(items)

    batcher: Batcher[int] = Batcher(flush, max_batch=2)
    batcher.hold(True)
    writer = asyncio.create_task(batcher.run())
    submitters = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    batcher.close()
    await writer
    await asyncio.gather(*submitters)
    assert flushed == [[0, 1], [2]]


async def test_items_put_without_waiting_are_counted_until_written() -> None:
    flushed: list[list[str]] = []
    batcher: Batcher[str] = Batcher(_appending_to(flushed), max_batch=5)
    writer = asyncio.create_task(batcher.run())
    batcher.hold(True)
    batcher.put("a")
    batcher.put("b")
    assert (batcher.pending, batcher.unwritten) == (2, 2)

    taken = batcher.take(1)
    assert (batcher.pending, batcher.unwritten) == (1, 2)  # taken, not written yet
    batcher.put_back(taken)  # the taker's transaction failed
    assert (batcher.pending, batcher.unwritten) == (2, 2)
    batcher.written(batcher.take(1))
    assert (batcher.pending, batcher.unwritten) == (1, 1)

    batcher.close()  # what is left is written by the batcher itself
    await writer
    assert flushed == [["b"]]
    assert batcher.unwritten == 0


def _appending_to(flushed: list[list[str]]) -> Callable[[list[str]], Awaitable[None]]:
    async def flush(items: list[str]) -> None:
        flushed.append(items)

    return flush
