"""Set-based writes for updates that the dispatcher handles one by one.

A page of button presses after a mass reminder arrives as many updates at once; each goes
through the dispatcher and the router on its own, but the writes behind them are cheaper as
one statement than as hundreds. A :class:`Batch` gathers the calls made while the earlier
batch is running (or within the same turn of the event loop) and runs them as one set; each
caller gets its own result or the batch's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


class Batch(Generic[In, Out]):
    """``run`` takes the gathered items and returns one result per item, in order. At most
    ``concurrent`` batches run at once (1 on SQLite, which has one writer); a failed batch is
    tried ``tries`` times in all (``run`` must be idempotent) before its callers see the
    error."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[In]], Awaitable[Sequence[Out]]],
        *,
        concurrent: int = 1,
        tries: int = 1,
        backoff_s: float = 0.5,
    ) -> None:
        self._name = name
        self._run = run
        self._slots = asyncio.Semaphore(concurrent)
        self._tries = tries
        self._backoff_s = backoff_s
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []

    async def submit(self, item: In) -> Out:
        """The result for ``item``, computed with the other items submitted meanwhile."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:  # the first caller runs the batch for everyone
            await self._lead()
        return await future

    async def _lead(self) -> None:
        async with self._slots:
            await asyncio.sleep(0)  # let the rest of the page, ready in this turn, join
            batch, self._pending = self._pending, []
            try:
                results = await self._run_with_retries([item for item, _ in batch])
            except Exception as err:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                return
            except BaseException:  # the leader was cancelled: so are the others' results
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _run_with_retries(self, items: list[In]) -> Sequence[Out]:
        for attempt in range(1, self._tries + 1):
            try:
                return await self._run(items)
            except Exception:
                if attempt == self._tries:
                    raise
                log.exception("a batch of %d %s failed (try %d)", len(items), self._name, attempt)
                await asyncio.sleep(self._backoff_s * attempt)  # backoff, not synchronisation
        raise AssertionError("unreachable")
