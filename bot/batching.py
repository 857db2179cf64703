"""Set-based writes for updates that the dispatcher handles one by one.

A page of button presses after a mass reminder arrives as many updates at once; each goes
through the dispatcher and the router on its own, but the writes behind them are cheaper as
one statement than as hundreds. A :class:`Batch` gathers the calls and runs them as one set;
each caller gets its own result or the batch's error.

Which calls are gathered: the updates of one polled page are members of a :class:`Page`, and
their calls to a batch wait until every update of the page still running has either made its
call (to this or another batch) or finished; then each batch runs its calls as one set. A page
thus costs a few statements whatever its size: the updates reach a batch at different moments
(each after its own middlewares and filters), so gathering what arrives in one turn of the event
loop split a page into sets of a few presses each. A call made outside a page (a webhook
update, one per request) gathers what is ready in the same turn of the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")
Waiting = list[tuple[Any, "asyncio.Future[Any]"]]


class Page:
    """The updates of one ``getUpdates`` page, handled concurrently. The poller counts each
    update in (:meth:`add`) before its task starts, and says when it may wait (:meth:`pause`:
    every update of the page is started, or it waits for a free slot); each update's task runs
    inside :meth:`member`."""

    def __init__(self) -> None:
        self._running = 0
        self._adding = True  # the poller is still starting the page's updates
        self._complete = False  # every update of the page is started (:meth:`complete`)
        self._waiting: dict[Batch[Any, Any], Waiting] = {}
        self._parked = 0  # the updates waiting in one of the batches
        self._left: set[asyncio.Task[Any] | None] = set()  # updates gone (:func:`leave_page`)
        # set once every update of the page is either done or has left it
        self.settled = asyncio.Event()

    def add(self) -> None:
        self._running += 1

    async def pause(self) -> None:
        """The poller starts no update of this page for now: run what the page has gathered
        if every update started is waiting for it."""
        self._adding = False
        self._settle()
        await self._flush_when_idle()

    def resume(self) -> None:
        self._adding = True

    async def complete(self) -> None:
        """Every update of the page is started: :meth:`pause` for good."""
        self._complete = True
        await self.pause()

    @contextlib.asynccontextmanager
    async def member(self) -> AsyncIterator[None]:
        """The task of one update of the page: its batch calls join the page's sets."""
        token = _PAGE.set(self)
        try:
            yield
        finally:
            _PAGE.reset(token)
            task = asyncio.current_task()
            if task in self._left:
                self._left.discard(task)
            else:
                await self._leave()

    async def _leave(self) -> None:
        self._running -= 1
        self._settle()
        await self._flush_when_idle()

    def _settle(self) -> None:
        if self._complete and not self._adding and self._running <= 0:
            self.settled.set()

    async def submit(self, batch: Batch[In, Out], item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(batch, []).append((item, future))
        self._parked += 1
        await self._flush_when_idle()
        return await future

    async def _flush_when_idle(self) -> None:
        # >=: an update cancelled while it waited leaves its call behind
        if self._adding or not self._waiting or self._parked < self._running:
            return
        gathered, self._waiting, self._parked = self._waiting, {}, 0
        for batch, calls in gathered.items():
            await batch.serve(calls)


_PAGE: ContextVar[Page | None] = ContextVar("bot_page", default=None)


async def leave_page() -> None:
    """The calling update leaves its page before slow work of its own (a voice answer to
    transcribe): the page's other updates no longer wait for it to gather their writes, and its
    own later writes go on their own. Nothing for an update outside a page."""
    page = _PAGE.get()
    if page is not None:
        _PAGE.set(None)
        page._left.add(asyncio.current_task())
        await page._leave()


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
        self._pending: Waiting = []

    async def submit(self, item: In) -> Out:
        """The result for ``item``, computed with the other items gathered with it (those of
        the same page, or else those submitted in the same turn of the event loop)."""
        page = _PAGE.get()
        if page is not None:
            return await page.submit(self, item)
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:  # the first caller runs the batch for everyone
            async with self._slots:
                await asyncio.sleep(0)  # let the others, ready in this turn, join
                calls, self._pending = self._pending, []
                await self._serve(calls)
        return await future

    async def serve(self, calls: Waiting) -> None:
        """Run the gathered ``calls`` as one set and hand each caller its result."""
        async with self._slots:
            await self._serve(calls)

    async def _serve(self, calls: Waiting) -> None:
        try:
            results = await self._run_with_retries([item for item, _ in calls])
        except Exception as err:
            for _, future in calls:
                if not future.done():
                    future.set_exception(err)
            return
        except BaseException:  # the runner was cancelled: so are the others' results
            for _, future in calls:
                future.cancel()
            raise
        for (_, future), result in zip(calls, results, strict=True):
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
