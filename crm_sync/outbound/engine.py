"""The CRM sync: tails the client timeline and pushes the events that matter to one CRM.

One worker at a time holds a connector's lease (``crm_cursors``). Each round it reads the
events after its cursor (keyset, ``id > cursor``), queues those of the configured kinds in
``crm_push`` and moves the cursor in the same transaction, then pushes the due ones in order:
each is marked "sending" before its request, and "done" with the CRM's id in one update after
it. A push left "sending" by a crash, or whose request may have landed (a timeout, a 5xx), is
looked up in the CRM by its key before anything is created again. Failures are retried with
exponential backoff; a refused event is marked failed with the CRM's reason while the others go
on; a CRM that is down or rate-limiting pauses this connector only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.connectors.errors import (
    CrmAuthFailed,
    CrmRateLimited,
    CrmRefused,
    CrmTransient,
    safe,
)
from crm_sync.outbound.delivery import Delivery
from crm_sync.outbound.gaps import Gaps
from crm_sync.outbound.metrics import CrmMetrics
from crm_sync.outbound.options import RoundReport, SyncOptions
from crm_sync.outbound.render import EventFacts, Unrenderable, render
from crm_sync.outbound.selection import SyncKind, sync_kind
from crm_sync.outbound.state import PushItem, PushState
from crm_sync.outbound.tail import Queued, TimelineTail
from povtor.db import utcnow
from povtor.domain import Client
from povtor.lifecycle import wait_or_stop
from povtor.ports import ClientLookup, CrmConnector, TimelineFeed
from povtor.work import backoff

log = logging.getLogger(__name__)


class _Stop(Exception):
    """The connector is paused: no more pushes this round."""


class CrmSync:
    name = "crm-sync"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: CrmConnector,
        clients: ClientLookup,
        options: SyncOptions,
        *,
        feed: TimelineFeed,
        owner: str,
        metrics: CrmMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self.connector = connector
        self._clients = clients
        self.options = options
        self.owner = owner
        self.feed = feed
        self.tail = TimelineTail(sessions, connector.name, feed)
        self.state = PushState(sessions, connector.name, max_attempts=options.max_attempts)
        self._delivery = Delivery(
            connector,
            self.state,
            external_id_is_crm_id=options.external_id_is_crm_id,
            clock=clock,
        )
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._tz = ZoneInfo(options.timezone)
        self._lease = timedelta(seconds=options.lease_s)
        self._gaps = Gaps(options.gap_wait_s)
        self._head: int | None = None  # highest event id read while holding the lease
        self._paused_until = 0.0
        self._outages = 0  # connector-wide failures in a row
        self._gauges_at = -1e9
        self._stopping: asyncio.Event | None = None
        self.round_done = asyncio.Event()  # set after every round of :meth:`run` (observers)

    # -- loops -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop``; idle rounds wait ``poll_interval_s``. On ``stop`` the push
        in flight finishes and the rest of its batch stays queued."""
        self._stopping = stop
        try:
            while not stop.is_set():
                try:
                    report = await self.round()
                except Exception:  # the store is down, a bug: logged, tried again
                    log.exception("CRM sync round failed; trying again")
                    report = RoundReport(held=False)
                    # Let go, so the next round starts afresh (and a push this round left
                    # "sending" is looked up before it is tried again).
                    self._head = None
                    with contextlib.suppress(Exception):
                        await self.tail.release(self.owner, self._clock())
                self.round_done.set()
                busy = report.held and (report.pushed or report.queued or report.scanned)
                wait = 0.0 if busy and not report.paused_s else self.options.poll_interval_s
                wait = max(wait, min(report.paused_s, self.options.poll_interval_s * 12))
                await wait_or_stop(stop, wait)
        finally:
            with contextlib.suppress(Exception):
                await self.tail.release(self.owner, self._clock())

    async def round(self) -> RoundReport:
        """One scan batch and one push batch."""
        if not await self._hold():
            return RoundReport(held=False)
        report = await self._scan()
        report.add(await self._push())
        report.paused_s = self._pause_left()
        await self._update_gauges()
        return report

    async def sync_once(self, *, max_wait_s: float = 60.0) -> RoundReport:
        """Everything queued and everything due pushed, then the lease let go: ``povtor crm
        sync --once``. Rate-limit pauses are waited out, up to ``max_wait_s`` in all; a CRM
        that is down ends the run (what is left stays queued)."""
        total = RoundReport()
        waited = 0.0
        self._outages, self._paused_until = 0, 0.0  # asked to run now: try the CRM afresh
        try:
            if not await self._hold():
                return RoundReport(held=False)
            while True:
                scanned = await self._scan()
                total.add(scanned)
                if scanned.scanned < self.options.scan_size:
                    break
            while True:
                pushed = await self._push()
                total.add(pushed)
                pause = self._pause_left()
                if self._outages:  # down or refusing credentials: the rest stays queued
                    total.paused_s = pause
                    break
                if pause > 0 and waited + pause <= max_wait_s:
                    await asyncio.sleep(pause)  # the CRM's own rate limit: wait it out
                    waited += pause
                    continue
                if pause > 0 or not (pushed.pushed or pushed.retried or pushed.failed):
                    total.paused_s = pause
                    break
            await self._update_gauges(force=True)
            return total
        finally:
            await self.tail.release(self.owner, self._clock())

    # -- scanning ----------------------------------------------------------------------------

    async def _hold(self) -> bool:
        cursor = await self.tail.acquire(
            self.owner, self._clock(), self._lease, backfill=self.options.backfill
        )
        if cursor is None:
            self._head = None
            return False
        if self._head is None or self._head < cursor:  # newly held: start from the cursor
            self._head = cursor
            self._gaps.clear()
        return True

    async def _scan(self) -> RoundReport:
        assert self._head is not None
        now = self._monotonic()
        head = self._head
        events, snapshot = await self.tail.scan(head, self.options.scan_size)
        refill = await self.tail.rescan(self._gaps.settled(snapshot, now))
        self._gaps.note(head, [e.id for e in events], snapshot, now)
        if events:
            head = events[-1].id
        queued = []
        for e in [*refill, *events]:
            kind = sync_kind(e.kind, e.data)
            if kind is not None and kind in self.options.kinds:
                queued.append(Queued(e.id, e.client_id, kind.value))
        if not await self.tail.enqueue(self.owner, queued, self._gaps.cursor(head), self._clock()):
            self._head = None
            return RoundReport(held=False)
        self._head = head
        return RoundReport(scanned=len(events), queued=len(queued))

    # -- pushing -----------------------------------------------------------------------------

    def _pause_left(self) -> float:
        return max(0.0, self._paused_until - self._monotonic())

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    async def _push(self) -> RoundReport:
        report = RoundReport()
        if self._pause_left() > 0:
            return report
        items = await self.state.due(self._clock(), self.options.batch_size)
        if not items:
            return report
        facts = await self.feed.with_records([i.event_id for i in items])
        clients = await self._clients.get_clients([i.client_id for i in items])
        contacts = await self.state.contacts([i.client_id for i in items])
        renewed = self._monotonic()
        for item in items:
            if self._stopping is not None and self._stopping.is_set():
                break  # the worker is shutting down: the rest waits for the next start
            if self._monotonic() - renewed > self.options.lease_s / 3:
                if not await self._hold():  # a long round keeps its lease, or stops
                    break
                renewed = self._monotonic()
            if not await self.state.start(item, self._clock()):
                continue  # taken by another worker meanwhile
            try:
                await self._push_one(item, facts.get(item.event_id), clients, contacts, report)
            except _Stop:
                break
        return report

    async def _push_one(
        self,
        item: PushItem,
        facts: EventFacts | None,
        clients: Mapping[int, Client],
        contacts: dict[int, str],
        report: RoundReport,
    ) -> None:
        client = clients.get(item.client_id)
        try:
            if facts is None or client is None:
                raise Unrenderable("the event or its client is no longer in the store")
            payload = render(SyncKind(item.kind), facts, self._tz)
        except (Unrenderable, ValueError, KeyError, TypeError) as err:
            await self._fail(item, f"cannot be pushed: {safe(str(err))}", "refused", report)
            return
        try:
            remote_id = await self._delivery.deliver(client, payload, contacts, item.in_doubt)
        except CrmRefused as err:
            await self._fail(item, str(err), "refused", report)
            return
        except CrmRateLimited as err:
            self._pause(err.retry_after)
            await self.state.retry(
                item,
                str(err),
                self._clock() + timedelta(seconds=err.retry_after),
                self._clock(),
                counts=False,
                maybe_applied=False,
            )
            self._count("rate_limited")
            report.retried += 1
            raise _Stop from err
        except CrmTransient as err:
            await self._transient(item, str(err), err, report)
            raise _Stop from err
        except (KeyError, ValueError, TypeError) as err:  # an answer we do not understand
            failure = CrmTransient(f"unexpected answer from the CRM: {err!r}", maybe_applied=True)
            await self._transient(item, str(failure), failure, report)
            raise _Stop from err
        await self.state.done(item, remote_id, self._clock())
        self._outages = 0
        report.pushed += 1
        if self._metrics is not None:
            self._metrics.pushed.labels(self.connector.name, item.kind).inc()

    async def _transient(
        self, item: PushItem, error: str, err: CrmTransient, report: RoundReport
    ) -> None:
        """Retried later with backoff, or failed when out of attempts; the connector pauses."""
        self._outages += 1
        self._pause(self._backoff(self._outages))
        attempts = item.attempts + 1
        reason = "auth" if isinstance(err, CrmAuthFailed) else "unavailable"
        if attempts >= self.options.max_attempts:
            await self._fail(item, f"{error} (gave up after {attempts} attempts)", reason, report)
            return
        log.warning("CRM push of event #%s will be retried: %s", item.event_id, error)
        await self.state.retry(
            item,
            error,
            self._clock() + timedelta(seconds=self._backoff(attempts)),
            self._clock(),
            counts=True,
            maybe_applied=err.maybe_applied,
        )
        self._count(reason)
        report.retried += 1
        report.errors.append(error)

    async def _fail(self, item: PushItem, error: str, reason: str, report: RoundReport) -> None:
        log.error("CRM push of event #%s failed: %s", item.event_id, error)
        await self.state.fail(item, error, self._clock())
        self._count(reason)
        report.failed += 1
        report.errors.append(error)

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, self.options.retry_backoff_s, self.options.retry_max_s)

    def _count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.failures.labels(self.connector.name, reason).inc()

    async def _update_gauges(self, *, force: bool = False) -> None:
        now = self._monotonic()
        if self._metrics is None or (not force and now - self._gauges_at < 30):
            return
        self._gauges_at = now
        status = await self.state.status(self.feed, errors=0)
        backlog = max(0, status.head - (status.cursor or 0))
        self._metrics.states(self.connector.name, status.counts, backlog)
